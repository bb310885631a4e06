"""Reads a stack's config the way the Pulumi CLI hands it to the program, without the CLI.

Pulumi.yaml gives project defaults (``config: {key: {default: ...}}`` or ``key: value``),
Pulumi.<stack>.yaml the stack's values, every namespace kept (``vault:address`` reaches its provider).

Values are read as the CLI reads them (sdk/go/common/resource/config/value.go, ``unmarshalValue``):
- a plain scalar is its text: ``kubernetesVersion: 1.30`` is "1.30", ``2026-11-01`` is "2026-11-01";
- ``{secure: <ciphertext>}`` is a secret;
- any other mapping or list is a structured value, decoded as the CLI's YAML library decodes it into
  ``any`` (gopkg.in/yaml.v2, sdk/go/common/encoding/marshal.go): YAML 1.1 booleans (``yes``/``no``/``on``/
  ``off``/``y``/``n`` too), ints, floats, null, and a date stays its text; passed as JSON, a
  ``{secure: ...}`` inside it making the whole key secret.
Ciphertext cannot be decrypted offline: secure values become the placeholder "[secret]", passed as
secrets, like every declared secret key the file lacks (operators set those with
``pulumi config set --secret``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "[secret]"
PROJECT_FILE = "Pulumi.yaml"


class StackFileError(Exception):
    """A stack that does not exist or a config file that cannot be read (one readable line)."""


@dataclass
class StackFiles:
    """A stack's config: project keys bare (namespace stripped), other namespaces' keys in full
    (``vault:address``); scalars as text, structured values as python; plus the keys that are secret."""

    stack: str
    project: str
    values: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # config Pulumi would read that the preview cannot
    sources: dict[str, str] = field(default_factory=dict)  # key as in values -> the file that sets it
    unnamespaced: dict[str, Any] = field(default_factory=dict)  # stack-file keys Pulumi refuses: no namespace

    @property
    def stack_file(self) -> str:
        return f"Pulumi.{self.stack}.yaml"

    def source_of(self, full_key: str) -> str:
        """The file that sets ``full_key`` (``cmp-platform:ragflow``, ``vault:address``), else the stack file,
        where a missing key belongs."""
        return self.sources.get(_bare(full_key, self.project), self.stack_file)

    def plain_values(self) -> dict[str, Any]:
        """Values without the secret keys."""
        return {k: v for k, v in self.values.items() if k not in self.secret_keys}


class _CliLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Plain scalars resolved as yaml.v2 resolves them into ``any`` (resolve.go ``resolve``, decode.go): its
    bool/null words, Go-parsed ints and floats, no sexagesimal numbers, and a timestamp stays a string."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


_TRUE = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
_FALSE = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_INT = re.compile(r"^[-+]?(?:[0-9][0-9_]*|0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+)$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$"
                    r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
_CLI_RESOLVERS = [
    ("tag:yaml.org,2002:bool", re.compile(f"^(?:{'|'.join(_TRUE + _FALSE)})$"), list("yYnNtTfFoO")),
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", _INT, list("-+0123456789")),
    ("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789")),
    ("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"]),
]
for _tag, _pattern, _first in _CLI_RESOLVERS:
    _CliLoader.add_implicit_resolver(_tag, _pattern, _first)


def _construct_int(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> int | float:
    """Go's strconv.ParseInt(text, 0, 64) after dropping underscores: 0x, 0o, 0b, and a leading 0 is octal;
    what does not parse as an int (``09``) is a float, as yaml.v2 falls back to."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    try:
        if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            return sign * int(digits, 8)
        return sign * int(digits, 0)
    except ValueError:
        return float(text)


def _construct_bool(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)) in _TRUE


_CliLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_CliLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)


def _compose(path: Path) -> yaml.Node | None:
    try:
        loader = _CliLoader(path.read_text())
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise StackFileError(f"{path.name}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


def _construct(node: yaml.Node, where: str) -> Any:
    loader = _CliLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise StackFileError(f"{where} line {node.start_mark.line + 1}: not a config value "
                             f"({getattr(exc, 'problem', None) or exc})") from None
    finally:
        loader.dispose()


def _mapping(node: yaml.Node | None, where: str) -> list[tuple[str, yaml.Node]]:
    """A mapping node's (key text, value node) pairs."""
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise StackFileError(f"{where} must be a mapping of keys to values")
    return [(str(key.value), value) for key, value in node.value]


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def _redact(value: Any) -> tuple[Any, bool]:
    """Replace ``secure:`` leaves by the placeholder; report whether any was found."""
    if _is_secure(value):
        return SECRET_PLACEHOLDER, True
    if isinstance(value, dict):
        found = False
        out = {}
        for k, v in value.items():
            out[str(k)], hit = _redact(v)
            found |= hit
        return out, found
    if isinstance(value, list):
        pairs = [_redact(v) for v in value]
        return [v for v, _ in pairs], any(h for _, h in pairs)
    return value, False


def config_value(node: yaml.Node, where: str = "config") -> tuple[Any, bool]:
    """One stack-file value as the CLI reads it: (text or structured value, is secret)."""
    if isinstance(node, yaml.ScalarNode):
        # A scalar unmarshals into the CLI's string: its text (null is the empty string).
        return ("" if node.tag == "tag:yaml.org,2002:null" else str(node.value)), False
    return _redact(_construct(node, where))


def _default_text(value: Any) -> Any:
    """A project default as the CLI passes it: primitives as text (Go's %v), structured values as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    return value


# The order environments are promoted in; --all previews (and lists) stacks in it, any others after, by name.
PROMOTION_ORDER = ("dev", "staging", "prod")


def known_stacks(root: Path) -> list[str]:
    """Stacks are the Pulumi.<stack>.yaml files beside Pulumi.yaml, in promotion order."""
    names = [p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml")]
    rank = {name: i for i, name in enumerate(PROMOTION_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def _bare(key: str, project: str) -> str:
    return key.removeprefix(f"{project}:")


def load_stack_files(root: Path, stack: str, declared_secret_keys: tuple[str, ...] | list[str] = ()) -> StackFiles:
    """Project defaults overlaid by the stack file; secure values and missing declared secrets as placeholders."""
    stacks = known_stacks(root)
    if stack not in stacks:
        raise StackFileError(f"unknown stack {stack!r} (known: {', '.join(stacks) or 'none'})")
    project_path = root / PROJECT_FILE
    project_doc = dict(_mapping(_compose(project_path), PROJECT_FILE)) if project_path.exists() else {}
    name = project_doc.get("name")
    project = str(name.value) if isinstance(name, yaml.ScalarNode) and name.value else "cmp-platform"
    values: dict[str, Any] = {}
    secret_keys: set[str] = set()
    sources: dict[str, str] = {}
    unnamespaced: dict[str, Any] = {}
    for key, spec_node in _mapping(project_doc.get("config"), f"{PROJECT_FILE}: config"):
        bare = _bare(key, project)
        spec = _construct(spec_node, PROJECT_FILE)
        if isinstance(spec, dict) and ("default" in spec or "value" in spec or "type" in spec):
            if "default" in spec or "value" in spec:
                values[bare] = _default_text(spec.get("value", spec.get("default")))
                sources[bare] = PROJECT_FILE
            if spec.get("secret"):
                secret_keys.add(bare)
        else:
            values[bare] = _default_text(spec)
            sources[bare] = PROJECT_FILE
    stack_file = f"Pulumi.{stack}.yaml"
    stack_doc = dict(_mapping(_compose(root / stack_file), stack_file))
    for key, node in _mapping(stack_doc.get("config"), f"{stack_file}: config"):
        if ":" not in key:  # Pulumi's reader refuses it (config.ParseKey): reported with the config errors
            unnamespaced[key] = config_value(node, stack_file)[0]
            continue
        bare = _bare(key, project)
        sources[bare] = stack_file
        values[bare], is_secret = config_value(node, stack_file)
        if is_secret:
            secret_keys.add(bare)
        else:
            secret_keys.discard(bare)  # the stack's plain value replaces a secret default
    notes = []
    if "environment" in stack_doc:  # Pulumi ESC: config the CLI resolves through the Pulumi Cloud
        notes.append(f"{stack}: {stack_file} imports Pulumi ESC environments (environment:), which the offline "
                     "preview cannot read: their config values are not in this preview")
    for key in declared_secret_keys:
        if key not in values:
            values[key] = SECRET_PLACEHOLDER
            secret_keys.add(key)
    return StackFiles(stack=stack, project=project, values=values, secret_keys=secret_keys, notes=notes,
                      sources=sources, unnamespaced=unnamespaced)
