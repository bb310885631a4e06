"""Several stacks previewed side by side: the first in this process, each other one in a process forked
once the SDK and the program are imported (copy-on-write: nothing is imported twice).

Why: a stack's run is ~0.05 s of CPU-bound SDK registration work, one after the other ~0.15 s of a
~0.5 s preview; on two cores the three overlap. Each child sends its report (exit code and lines)
back as JSON on a pipe; reports come out in stack order, so the terminal output and the files are
those of the sequential run (tests/infra/preview/test_command.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator

from infra.preview.pipes import read_to_end, write_all

# (stack, index) -> (exit code, lines); index 0 is this process, i > 0 the i-th child.
Report = tuple[int, list[str]]
PreviewOne = Callable[[str, int], Report]


class ChildFailed(RuntimeError):
    """A child crashed or vanished: its stack has no report (the message carries what is known)."""


def _child(stack: str, index: int, preview_one: PreviewOne, fd: int) -> None:  # pragma: no cover (in the child)
    try:
        code, lines = preview_one(stack, index)
        message: dict = {"code": code, "lines": lines}
    except BaseException:
        message = {"crash": traceback.format_exc()}
    try:
        write_all(fd, json.dumps(message).encode())
    finally:
        os._exit(0)


def _collect(stack: str, pid: int, fd: int) -> Report:
    try:
        data = read_to_end(fd)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    if not data:
        raise ChildFailed(f"preview of stack {stack}: its process {pid} ended without a report "
                          f"(wait status {status})")
    message = json.loads(data)
    if "crash" in message:
        raise ChildFailed(f"preview of stack {stack} failed in process {pid}:\n{message['crash']}")
    return message["code"], message["lines"]


def preview_side_by_side(stacks: list[str], preview_one: PreviewOne) -> Iterator[Report]:
    """Yield each stack's report in order; children are reaped even when this process fails."""
    children: list[tuple[str, int, int]] = []
    try:
        for index, stack in enumerate(stacks[1:], start=1):
            read_end, write_end = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # pragma: no cover (the child)
                os.close(read_end)
                _child(stack, index, preview_one, write_end)
            os.close(write_end)
            children.append((stack, pid, read_end))
        if stacks:
            yield preview_one(stacks[0], 0)
        while children:
            stack, pid, fd = children.pop(0)
            yield _collect(stack, pid, fd)
    finally:
        for _, pid, fd in children:  # only after a failure here: let them finish, then reap
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
