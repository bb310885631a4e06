"""`python -m infra.preview --stack dev | --all`: the offline preview (no cluster, no CLI, no credentials)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from infra.preview.stack_files import known_stacks, load_stack_files

# Deliberately not imported here: infra.preview.runner (it loads the Pulumi SDK). The command first
# starts the schema-validation helper, so that it forks from a small process (see __main__ below).


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.preview", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="one stack (a Pulumi.<stack>.yaml beside Pulumi.yaml)")
    which.add_argument("--all", action="store_true", help="every stack, in one process")
    parser.add_argument("--out", type=Path, default=None, help="output root (default build/preview)")
    return parser.parse_args(argv)


def chosen_stacks(root: Path, args: argparse.Namespace) -> list[str]:
    return known_stacks(root) if args.all else [args.stack]


def main(argv: list[str] | None = None, *, root: Path | None = None, side_by_side: bool = False,
         on_process: Callable[[int], None] | None = None, **overrides) -> int:
    """Preview the chosen stacks; print each one's table and summary; return the worst exit code.

    ``side_by_side``: the stacks after the first run in forked processes (infra/preview/side_by_side.py);
    ``on_process(i)`` is called in the process previewing the i-th stack, before it starts.
    """
    from infra.preview.runner import PROJECT_ROOT, preview_stack

    args = parse_args(argv)
    root = root or PROJECT_ROOT
    stacks = chosen_stacks(root, args)

    def preview_one(stack: str, index: int) -> tuple[int, list[str]]:
        if on_process is not None:
            on_process(index)
        result = preview_stack(stack, root=root, out_root=args.out, **overrides)
        return result.code, result.lines

    if side_by_side and len(stacks) > 1:
        from infra.preview.side_by_side import preview_side_by_side

        preload_program()
        reports = preview_side_by_side(stacks, preview_one)
    else:
        reports = (preview_one(stack, index) for index, stack in enumerate(stacks))
    code = 0
    for result_code, lines in reports:
        for line in lines:
            print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
        code = max(code, result_code)
    return code


def preload_program() -> None:
    """Import what every stack's preview imports, before forking, so that the processes share it."""
    import infra.config
    import infra.program  # noqa: F401
    import policy.policies  # noqa: F401
    import stacks.platform  # noqa: F401


def stack_kubernetes_versions(root: Path, argv: list[str] | None = None) -> list[str]:
    """The kubernetesVersion values of the stacks a command line will preview (to warm their schemas)."""
    versions = []
    for stack in chosen_stacks(root, parse_args(argv)):
        version = load_stack_files(root, stack).values.get("kubernetesVersion")
        if isinstance(version, str) and version not in versions:
            versions.append(version)
    return versions


def command(argv: list[str] | None = None) -> int:
    """The command: no cyclic GC, schema checks in a helper process, stacks side by side.

    All three only speed the run up; the files and the report are the same as ``main`` run in-process
    (tests/infra/preview/test_command.py). The GC: importing the SDK and the program allocates
    millions of long-lived objects, and the collections this triggers (each one walking that heap)
    cost ~0.1-0.2 s of a ~1 s run; the process is short-lived and creates little cyclic garbage, so
    it runs without the collector (peak RSS measured the same within a few MB, docs/preview.md).
    """
    from infra.preview.validator_worker import ValidatorWorker

    args = parse_args(argv)  # a usage error exits here, before anything is started
    gc.disable()
    root = Path(__file__).resolve().parents[2]
    worker = ValidatorWorker.start(lambda: stack_kubernetes_versions(root, argv),
                                   channels=len(chosen_stacks(root, args)))
    try:
        return main(argv, side_by_side=True, on_process=worker.use_channel, validate=worker.validate_all)
    finally:
        worker.close()


def exit_without_teardown(code: int) -> NoReturn:
    """Flush and leave with ``os._exit``: every file is written and replaced by then, and nothing the
    preview runs needs an exit hook. Python's own shutdown would tear down the SDK's heap (a full
    garbage collection and the deallocation of millions of objects): ~0.09 s, a sixth of the run
    (docs/preview.md, "Speed")."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_without_teardown(command())
