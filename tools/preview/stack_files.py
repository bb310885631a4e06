"""Reads a stack's config the way the Pulumi CLI would hand it to the program, without the CLI.

Pulumi.yaml gives project defaults (``config: {key: {default: ...}}`` or ``key: value``),
Pulumi.<stack>.yaml the stack's values. Encrypted values (``secure:``) cannot be decrypted
offline, so they become the placeholder "[secret]" and are passed as secrets, like every secret
key infra.config declares that the file lacks (operators set those with ``pulumi config set --secret``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.preview import yamlio

SECRET_PLACEHOLDER = "[secret]"
PROJECT_FILE = "Pulumi.yaml"


class StackFileError(Exception):
    """A stack that does not exist or a config file that cannot be read (one readable line)."""


@dataclass
class StackFiles:
    """A stack's config as bare keys (project namespace stripped) plus the keys that are secret."""

    stack: str
    project: str
    values: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)

    def plain_values(self) -> dict[str, Any]:
        """Values without the secret keys (what infra.config.parse_stack_config takes as ``raw``)."""
        return {k: v for k, v in self.values.items() if k not in self.secret_keys}


def known_stacks(root: Path) -> list[str]:
    """Stacks are the Pulumi.<stack>.yaml files beside Pulumi.yaml."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yamlio.load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise StackFileError(f"{path.name}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackFileError(f"{path.name}: must be a YAML mapping, got {type(data).__name__}")
    return data


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _redact(value: Any) -> tuple[Any, bool]:
    """Replace ``secure:`` leaves by the placeholder; report whether any was found."""
    if _is_secure(value):
        return SECRET_PLACEHOLDER, True
    if isinstance(value, dict):
        found = False
        out = {}
        for k, v in value.items():
            out[k], hit = _redact(v)
            found |= hit
        return out, found
    if isinstance(value, list):
        pairs = [_redact(v) for v in value]
        return [v for v, _ in pairs], any(h for _, h in pairs)
    return value, False


def _bare(key: str, project: str) -> str:
    return key.removeprefix(f"{project}:")


def load_stack_files(root: Path, stack: str, declared_secret_keys: tuple[str, ...] | list[str] = ()) -> StackFiles:
    """Project defaults overlaid by the stack file; secure values and missing declared secrets as placeholders."""
    stacks = known_stacks(root)
    if stack not in stacks:
        raise StackFileError(f"unknown stack {stack!r} (known: {', '.join(stacks) or 'none'})")
    project_doc = _load_yaml(root / PROJECT_FILE) if (root / PROJECT_FILE).exists() else {}
    project = str(project_doc.get("name") or "cmp-platform")
    values: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, spec in (project_doc.get("config") or {}).items():
        if isinstance(spec, dict) and ("default" in spec or "value" in spec or "type" in spec):
            if "default" in spec or "value" in spec:
                values[_bare(key, project)] = spec.get("value", spec.get("default"))
            if spec.get("secret"):
                secret_keys.add(_bare(key, project))
        else:
            values[_bare(key, project)] = spec
    stack_doc = _load_yaml(root / f"Pulumi.{stack}.yaml")
    stack_config = stack_doc.get("config") or {}
    if not isinstance(stack_config, dict):
        raise StackFileError(f"Pulumi.{stack}.yaml: config must be a mapping of keys to values")
    for key, value in stack_config.items():
        bare = _bare(str(key), project)
        values[bare], is_secret = _redact(value)
        if is_secret:
            secret_keys.add(bare)
    for key in declared_secret_keys:
        if key not in values:
            values[key] = SECRET_PLACEHOLDER
            secret_keys.add(key)
    return StackFiles(stack=stack, project=project, values=values, secret_keys=secret_keys)
