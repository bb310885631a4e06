"""`python -m infra.preview --stack dev | --all`: the offline preview (no cluster, no CLI, no credentials)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.preview.runner import PROJECT_ROOT, preview_stack
from infra.preview.stack_files import known_stacks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.preview", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stack", help="one stack (a Pulumi.<stack>.yaml beside Pulumi.yaml)")
    which.add_argument("--all", action="store_true", help="every stack, in one process")
    parser.add_argument("--out", type=Path, default=None, help="output root (default build/preview)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, root: Path = PROJECT_ROOT, **overrides) -> int:
    """Preview the chosen stacks; print each one's table and summary; return the worst exit code."""
    args = parse_args(argv)
    stacks = known_stacks(root) if args.all else [args.stack]
    code = 0
    for stack in stacks:
        result = preview_stack(stack, root=root, out_root=args.out, **overrides)
        for line in result.lines:
            print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
        code = max(code, result.code)
    return code


if __name__ == "__main__":
    sys.exit(main())
