"""One stack's offline preview: config check, program run, schema checks, policies, files, report.

Exit codes: 0 clean; 1 invalid manifests (nothing written) or mandatory policy violations (files
written for inspection); 2 unknown stack, config error or program error (nothing written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.config import ConfigErrors
from infra.environ import environ_set
from infra.recording import UNKNOWN, Recording, encode_config, run_main, run_program
from infra.schemas import not_configured
from infra.sdk_private import policy_proxy
from policy.oci_registry import OFFLINE_ENV
from tools.preview.changes import compare, counts, read_previous, table
from tools.preview.export import write_tree
from tools.preview.manifests import NOT_DEPLOYABLE_DIR, Manifest, export_files, manifests_of
from tools.preview.stack_files import StackFileError, StackFiles, load_stack_files
from tools.preview.yamlio import dump as dump_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KUBERNETES_VERSION = "1.33"

# check_config(files) -> the Kubernetes version to validate against; raises on invalid config.
ConfigCheck = Callable[[StackFiles], str]
# validate((object, is_partial) pairs, kubernetes version) -> violations (validation.validate_all).
Validate = Callable[[Iterable[tuple[dict[str, Any], bool]], str], list[Any]]


class PreviewError(Exception):
    """A failure reported as one line; ``code`` is the process exit code."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def declared_secret_keys() -> tuple[str, ...]:
    from stacks.config import SECRET_KEYS

    return tuple(SECRET_KEYS)


def offline(online: bool = False) -> AbstractContextManager[None]:
    """The program and the policies run with no network: no registry is asked (policy/oci_registry.py), so a
    preview shows the same (unknown or unchecked) digests on every machine. ``online``: they ask."""
    return nullcontext() if online else environ_set({OFFLINE_ENV: "1"})


def check_stack_config(files: StackFiles) -> str:
    """Validate the config bag the program will be handed, with the program's own reader (secrets as
    placeholders); other namespaces are checked where the program knows their keys. Every error at once,
    each naming the file that sets its key; a key without a namespace is one of them."""
    from stacks.config import stack_config_from_bag, unnamespaced_key_error

    bag = encode_config(files.values, files.project)
    secret_keys = set(encode_config(dict.fromkeys(files.secret_keys, ""), files.project))
    earlier = [unnamespaced_key_error(key, value) for key, value in files.unnamespaced.items()]
    return stack_config_from_bag(bag, secret_keys, source=files.source_of, earlier=earlier).kubernetes_version


def namespace_notes(files: StackFiles) -> list[str]:
    """A warning per stack-file key whose namespace nothing reads (stacks.config.namespace_warnings)."""
    from stacks.config import namespace_warnings

    keys = [key if ":" in key else f"{files.project}:{key}" for key in files.values]
    return [f"warning: {files.stack}: {line}" for line in namespace_warnings(keys, files.source_of)]


def _readable_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is already the one line to show (no exception type prefix)."""
    import pulumi

    try:
        from infra.config import ConfigError
    except ImportError:
        return (pulumi.RunError, PreviewError)
    return (ConfigError, pulumi.RunError, PreviewError)


def preview_policies(manifests: list[Manifest]) -> tuple[list[Any], list[tuple[str, str]]]:
    """The policies over the objects as CrossGuard runs them in a preview: a policy that reads a value
    only a deployment knows is not run on that object (pulumi_policy's unknown-checking proxy raises,
    the analyzer reports it as not run). Returns the violations and the (policy, object) pairs not run."""
    from policy.policies import RESOURCE_POLICIES, STACK_POLICIES, Violation, evaluate

    if all(m.deployable for m in manifests):
        return evaluate((m.ref, m.resource.type, m.obj) for m in manifests), []
    proxy = policy_proxy()
    UNKNOWN_STRING_VALUE, UnknownValueError = proxy.UNKNOWN_STRING_VALUE, proxy.UnknownValueError

    def as_sdk_sees(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: as_sdk_sees(v) for k, v in value.items()}
        if isinstance(value, list):
            return [as_sdk_sees(v) for v in value]
        return UNKNOWN_STRING_VALUE if value == UNKNOWN else value

    objects = [(m.ref, m.resource.type, proxy.unknown_checking_proxy(as_sdk_sees(m.obj))) for m in manifests]
    violations: list[Any] = []
    not_run: list[tuple[str, str]] = []
    for policy in RESOURCE_POLICIES:
        for ref, rtype, props in objects:
            try:
                violations += [Violation(policy.name, ref, msg) for msg in policy.check(rtype, props)]
            except UnknownValueError:
                not_run.append((policy.name, ref))
    for name, _, check in STACK_POLICIES:
        try:
            violations += [Violation(name, "stack", msg) for msg in check((t, p) for _, t, p in objects)]
        except UnknownValueError:
            not_run.append((name, "stack"))
    return violations, not_run


def unchecked_digest_lines(stack: str, manifests: list[Manifest], online: bool) -> list[str]:
    """One line per pinned image whose digest no registry confirmed: offline none is asked."""
    from policy.policies import unchecked_digests

    why = ("its registry could not tell (unreachable, refused, or needs credentials)" if online else
           "no registry is asked offline (`make preview-online` asks it)")
    return [f"policy: {stack}: [image-digests-real] {m.ref}: digest of {image} not checked: {why}"
            for m in manifests for image in unchecked_digests(m.resource.type, m.obj)]


@dataclass
class StackPreview:
    """What one preview produced (also used by tests and the bench)."""

    stack: str
    code: int
    lines: list[str] = field(default_factory=list)
    recording: Recording | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, _readable_errors()) else f"{type(exc).__name__}: {text}"


def preview_stack(stack: str, *, root: Path = PROJECT_ROOT, out_root: Path | None = None,
                  program: Callable[[], Any] | None = None, program_dir: Path = PROJECT_ROOT,
                  check_config: ConfigCheck = check_stack_config,
                  secret_keys: Callable[[], tuple[str, ...]] = declared_secret_keys,
                  validate: Validate | None = None, online: bool = False) -> StackPreview:
    """Preview one stack of the stack files in ``root`` into ``out_root/<stack>``; never raises for user
    errors (see the exit codes). The program is ``program``, or else ``program_dir``'s ``__main__.py``.
    ``online``: registries are asked (image digests, Ragflow's registryPreflight); by default nothing is."""
    if validate is None:
        from tools.preview.validation import validate_all as validate

    out_root = out_root or root / "build" / "preview"
    result = StackPreview(stack=stack, code=0)
    try:
        files = load_stack_files(root, stack, secret_keys())
    except StackFileError as exc:
        result.code, result.lines = 2, [f"error: {exc}"]
        return result
    result.lines += files.notes + namespace_notes(files)
    try:
        kubernetes_version = check_config(files) or DEFAULT_KUBERNETES_VERSION
        with offline(online):
            if program is None:  # the project's own program, run as Pulumi's language host runs it
                recording = run_main(program_dir, stack=stack, config=files.values,
                                     secret_keys=files.secret_keys, project=files.project)
            else:
                recording = run_program(program, stack=stack, config=files.values,
                                        secret_keys=files.secret_keys, project=files.project)
        manifests = manifests_of(recording)
        invalid = validate(((m.obj, m.is_patch) for m in manifests), kubernetes_version)
    except Exception as exc:  # one line per config error, one for a program error; nothing is written
        result.code = 2
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        result.lines += [f"error: {stack}: {_one_line(e)}" for e in errors]
        return result
    result.recording = recording
    if invalid:
        result.code = 1
        result.lines = [f"error: {stack}: invalid manifest: {v}" for v in invalid]
        result.lines.append(f"{stack}: nothing written to {out_root / stack} (fix the manifests above)")
        return result

    from tools.preview.validation import unchecked_kinds

    unchecked = unchecked_kinds(m.obj for m in manifests)
    if unchecked:
        result.lines.append(not_configured(f"{stack}: {', '.join(unchecked)}"))
    rows = [r.to_json() for r in recording.in_tree_order()]
    with offline(online):
        violations, not_run = preview_policies(manifests)
        digests_unchecked = unchecked_digest_lines(stack, manifests, online)
    target = out_root / stack
    changes = compare(read_previous(target / "resources.json"), rows)
    tree = export_files(manifests, dump_yaml)
    tree["resources.json"] = json.dumps(rows, indent=2) + "\n"
    tree["outputs.json"] = json.dumps(recording.outputs, indent=2, sort_keys=True) + "\n"
    try:
        write_tree(target, tree)
    except OSError as exc:
        result.code, result.lines = 2, [f"error: {stack}: cannot write {target}: {exc.strerror or exc}"]
        return result

    n = counts(changes)
    not_deployable = sum(not m.deployable for m in manifests)
    held_back = f" ({not_deployable} not deployable)" if not_deployable else ""
    result.lines.append(table(changes))
    result.lines += [f"policy: {stack}: [{v.policy}] {v.resource}: {v.message}" for v in violations]
    result.lines += [f"policy: {stack}: [{policy}] {ref}: not run in a preview: it reads a value known only "
                     "after `pulumi up`" for policy, ref in not_run]
    result.lines += digests_unchecked
    result.lines += [f"{stack}: not deployable, left out of the GitOps export: {m.ref}: "
                     f"{', '.join(m.unknown)} known only after `pulumi up` (written to "
                     f"{NOT_DEPLOYABLE_DIR}/{m.path} for inspection)" for m in manifests if not m.deployable]
    result.lines.append(f"{stack}: {len(rows)} resources (+{n['+']} ~{n['~']} -{n['-']}), "
                        f"{len(manifests)} manifests{held_back}, {len(violations)} policy violations")
    if violations:
        result.code = 1
        result.lines.append(f"{stack}: mandatory policy violations; files written to {target} for inspection")
    return result
