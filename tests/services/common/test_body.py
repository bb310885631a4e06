"""The bounded body read both services use, fed ASGI messages directly."""

from __future__ import annotations

import pytest

from service_src.common.body import BodyRefused, read_body


def channel(*chunks: bytes, disconnect: bool = False):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict:
        return messages.pop(0)

    return receive


async def test_a_body_within_the_limit_is_joined():
    assert await read_body(channel(b"ab", b"cd"), 4, b"4") == b"abcd"
    assert await read_body(channel(b"ab", b"cd"), 4, None) == b"abcd"


@pytest.mark.parametrize(
    ("receive", "declared", "status", "message"),
    [
        (channel(b"x"), b"5", 413, "body of 5 bytes exceeds MAX_BODY_BYTES=4"),
        (channel(b"abc", b"de"), None, 413, "body exceeds MAX_BODY_BYTES=4"),
        (channel(b"x"), "1e3", 400, "Content-Length must be a decimal number"),
        (channel(b"ab", disconnect=True), None, 400, "client disconnected before sending the whole body"),
    ],
    ids=["declared-too-large", "chunked-too-large", "bad-length", "disconnect"],
)
async def test_refusals_name_the_rule(receive, declared, status, message):
    with pytest.raises(BodyRefused) as info:
        await read_body(receive, 4, declared)
    assert (info.value.status, str(info.value)) == (status, message)
