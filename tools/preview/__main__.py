"""`python -m tools.preview --stack dev | --all`: the offline preview (no cluster, no CLI, no credentials)."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from infra.schemas import SchemaDirError, schema_dir
from tools.cli import OneLineParser
from tools.preview.stack_files import known_stacks

# tools.preview.runner (the Pulumi SDK) is imported in main(): a usage error answers without loading it.


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="python -m tools.preview", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="one stack (a Pulumi.<stack>.yaml beside Pulumi.yaml)")
    which.add_argument("--all", action="store_true", help="every stack, in one process")
    parser.add_argument("--out", type=Path, default=None, help="output root (default build/preview)")
    parser.add_argument("--online", action="store_true",
                        help="ask registries: pinned image digests, Ragflow's registryPreflight (default: no network)")
    return parser.parse_args(argv)


def chosen_stacks(root: Path, args: argparse.Namespace) -> list[str]:
    return known_stacks(root) if args.all else [args.stack]


def main(argv: list[str] | None = None, *, root: Path | None = None, freeze_imports: bool = False,
         **overrides) -> int:
    """Preview the chosen stacks one after the other; print each one's table and summary; return the worst
    exit code. ``freeze_imports``: this process previews and exits (the command, not a caller's process)."""
    from tools.preview.runner import PROJECT_ROOT, preview_stack

    if freeze_imports:
        # What the imports made (the SDK, its protobuf descriptors, the foundation) lives until exit, so the
        # collector's full collections during the program runs, and the interpreter's at exit, need not walk
        # it again: gc.freeze() sets it aside. Collection stays on for everything made from here on.
        gc.freeze()

    args = parse_args(argv)
    root = root or PROJECT_ROOT
    try:
        schema_dir()  # a CMP_SCHEMA_DIR naming no directory is one line, not one per stack
    except SchemaDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    code = 0
    for stack in chosen_stacks(root, args):
        result = preview_stack(stack, root=root, out_root=args.out, online=args.online, **overrides)
        for line in result.lines:
            print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
        code = max(code, result.code)
    return code


if __name__ == "__main__":
    sys.exit(main(freeze_imports=True))
