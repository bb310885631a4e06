"""Whole writes and reads on the preview's pipes (to the schema helper, from side-by-side children):
``os.write`` and ``os.read`` may move part of a buffer, a message must arrive whole."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, n: int) -> bytes:
    """``n`` bytes; EOFError when the writer closes first."""
    chunks, left = [], n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("pipe closed by the writer")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_to_end(fd: int) -> bytes:
    """Everything until every writer has closed the pipe."""
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)
