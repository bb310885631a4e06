"""Reading a request body with a hard size limit, from the ASGI ``receive`` channel.

A declared Content-Length over the limit is refused before a byte is read; a body without one (chunked) is
refused as soon as what has arrived passes the limit. Nothing over the limit is ever held in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


class BodyRefused(Exception):
    """``status`` 413 (too large) or 400 (a bad Content-Length, or the client left); the message says which."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(receive: Receive, limit: int, declared: bytes | str | None) -> bytes:
    """The whole body, at most ``limit`` bytes; ``declared`` is the Content-Length header, if any."""
    if declared is not None:
        declared = declared.decode("latin-1") if isinstance(declared, bytes) else declared
        if not declared.isdigit():
            raise BodyRefused(400, "Content-Length must be a decimal number")
        if int(declared) > limit:
            raise BodyRefused(413, f"body of {int(declared)} bytes exceeds MAX_BODY_BYTES={limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyRefused(400, "client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyRefused(413, f"body exceeds MAX_BODY_BYTES={limit}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
