"""One stack's offline preview: config check, program run, schema checks, policies, files, report.

Exit codes: 0 clean; 1 invalid manifests (nothing written) or mandatory policy violations (files
written for inspection); 2 unknown stack, config error or program error (nothing written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.recording import Recording, encode_config, run_main, run_program
from infra.schemas import not_configured
from tools.preview.changes import compare, counts, read_previous, table
from tools.preview.export import write_tree
from tools.preview.manifests import kustomization, manifests_of
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


def check_stack_config(files: StackFiles) -> str:
    """Validate the config bag the program will be handed, with the program's own reader (secrets as
    placeholders); other namespaces are checked where the program knows their keys."""
    from stacks.config import stack_config_from_bag

    bag = encode_config(files.values, files.project)
    secret_keys = set(encode_config(dict.fromkeys(files.secret_keys, ""), files.project))
    return stack_config_from_bag(bag, secret_keys).kubernetes_version


def _readable_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is already the one line to show (no exception type prefix)."""
    import pulumi

    try:
        from infra.config import ConfigError
    except ImportError:
        return (pulumi.RunError, PreviewError)
    return (ConfigError, pulumi.RunError, PreviewError)


@dataclass
class StackPreview:
    """What one preview produced (also used by tests and the bench)."""

    stack: str
    code: int
    lines: list[str] = field(default_factory=list)
    recording: Recording | None = None
    manifest_paths: list[str] = field(default_factory=list)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, _readable_errors()) else f"{type(exc).__name__}: {text}"


def preview_stack(stack: str, *, root: Path = PROJECT_ROOT, out_root: Path | None = None,
                  program: Callable[[], Any] | None = None, program_dir: Path = PROJECT_ROOT,
                  check_config: ConfigCheck = check_stack_config,
                  secret_keys: Callable[[], tuple[str, ...]] = declared_secret_keys,
                  validate: Validate | None = None) -> StackPreview:
    """Preview one stack of the stack files in ``root`` into ``out_root/<stack>``; never raises for user
    errors (see the exit codes). The program is ``program``, or else ``program_dir``'s ``__main__.py``."""
    from policy.policies import evaluate

    if validate is None:
        from tools.preview.validation import validate_all as validate

    out_root = out_root or root / "build" / "preview"
    result = StackPreview(stack=stack, code=0)
    try:
        files = load_stack_files(root, stack, secret_keys())
    except StackFileError as exc:
        result.code, result.lines = 2, [f"error: {exc}"]
        return result
    try:
        kubernetes_version = check_config(files) or DEFAULT_KUBERNETES_VERSION
        if program is None:  # the project's own program, run as Pulumi's language host runs it
            recording = run_main(program_dir, stack=stack, config=files.values, secret_keys=files.secret_keys,
                                 project=files.project)
        else:
            recording = run_program(program, stack=stack, config=files.values, secret_keys=files.secret_keys,
                                    project=files.project)
        manifests = manifests_of(recording)
        invalid = validate(((m.obj, m.is_patch) for m in manifests), kubernetes_version)
    except Exception as exc:  # one line for any config/program error; nothing is written
        result.code, result.lines = 2, [f"error: {stack}: {_one_line(exc)}"]
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
    violations = evaluate((m.ref, m.resource.type, m.obj) for m in manifests)
    target = out_root / stack
    changes = compare(read_previous(target / "resources.json"), rows)
    tree = {f"manifests/{m.path}": dump_yaml(m.obj) for m in manifests}
    tree["manifests/kustomization.yaml"] = dump_yaml(kustomization(manifests))
    tree["resources.json"] = json.dumps(rows, indent=2) + "\n"
    tree["outputs.json"] = json.dumps(recording.outputs, indent=2, sort_keys=True) + "\n"
    write_tree(target, tree)
    result.manifest_paths = [m.path for m in manifests]

    n = counts(changes)
    result.lines.append(table(changes))
    result.lines += [f"policy: {stack}: [{v.policy}] {v.resource}: {v.message}" for v in violations]
    result.lines.append(f"{stack}: {len(rows)} resources (+{n['+']} ~{n['~']} -{n['-']}), "
                        f"{len(manifests)} manifests, {len(violations)} policy violations")
    if violations:
        result.code = 1
        result.lines.append(f"{stack}: mandatory policy violations; files written to {target} for inspection")
    return result
