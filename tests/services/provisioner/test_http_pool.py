"""The worker's keep-alive HTTP pool against raw loopback servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from service_src.provisioner.http_pool import HttpError, HttpPool
from tests.support.net import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A loopback HTTP/1.1 server whose per-connection behaviour is a coroutine; it logs what it was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.port = 0

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = (lines[0], headers, body)
        self.requests.append(request)
        return request


def reply(status: int, body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def keep_alive(reader, writer, server: Server) -> None:
    while True:
        await server.read_request(reader)
        writer.write(reply(201, b'{"ok":true}'))
        await writer.drain()


def pool(port: int, *, path: str = "", max_connections: int = 4, timeout: float = 2.0) -> HttpPool:
    return HttpPool(f"http://127.0.0.1:{port}{path}", max_connections=max_connections, timeout_seconds=timeout)


async def test_requests_reuse_one_connection_with_host_path_and_headers():
    async with Server(keep_alive) as server:
        client = pool(server.port, path="/api/")
        for _ in range(3):
            assert await client.post("/instances", b'{"a":1}', {"Idempotency-Key": "k"}) == (201, b'{"ok":true}')
        await client.aclose()
    assert server.connections == 1
    line, headers, body = server.requests[0]
    assert line == "POST /api/instances HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["idempotency-key"] == "k" and body == b'{"a":1}'


async def test_an_idle_connection_the_server_closed_is_not_used_again():
    async def one_answer_then_close(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(reply(200, b"{}"))  # no "Connection: close": the client believes it may reuse it
        await writer.drain()

    async with Server(one_answer_then_close) as server:
        client = pool(server.port)
        assert (await client.post("/x", b"1", {}))[0] == 200
        await asyncio.sleep(0.05)
        assert (await client.post("/x", b"2", {}))[0] == 200
        await client.aclose()
    assert server.connections == 2
    assert [body for _, _, body in server.requests] == [b"1", b"2"]


async def test_a_request_cut_off_on_a_reused_connection_before_its_answer_is_sent_once_more():
    async def drop_the_second(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(reply(200, b"{}"))
        await writer.drain()
        if server.connections == 1:
            await server.read_request(reader)  # the server closed this idle connection as the request came
            return
        await keep_alive(reader, writer, server)

    async with Server(drop_the_second) as server:
        client = pool(server.port)
        assert (await client.post("/x", b"1", {}))[0] == 200
        assert (await client.post("/x", b"2", {}))[0] == 200
        await client.aclose()
    assert server.connections == 2
    assert [body for _, _, body in server.requests] == [b"1", b"2", b"2"]


async def test_connection_close_answers_are_not_reused():
    async def close_after(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(reply(200, b"{}", "Connection: close\r\n"))
        await writer.drain()

    async with Server(close_after) as server:
        client = pool(server.port)
        for _ in range(2):
            assert (await client.post("/x", b"", {}))[0] == 200
        await client.aclose()
    assert server.connections == 2 and len(server.requests) == 2


def answer_once(raw: bytes) -> Handler:
    """A server that answers the first request with ``raw`` bytes, then waits for the client to go."""

    async def handler(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        writer.write(raw)
        await writer.drain()
        await reader.read()

    return handler


async def test_chunked_answers_are_assembled():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n"
    async with Server(answer_once(chunked)) as server:
        client = pool(server.port)
        assert await client.post("/x", b"", {}) == (200, b'{"a":1}')
        await client.aclose()


async def test_a_silent_server_times_out_and_the_connection_is_dropped():
    async def silent_once(reader, writer, server: Server) -> None:
        await server.read_request(reader)
        if len(server.requests) == 1:
            await reader.read()  # never answers the first request
            return
        writer.write(reply(200, b"{}"))
        await writer.drain()
        await reader.read()

    async with Server(silent_once) as server:
        client = pool(server.port, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.post("/x", b"", {})
        assert time.monotonic() - started < 1.5
        assert (await client.post("/x", b"", {}))[0] == 200  # a fresh connection, not the stuck one
        await client.aclose()
    assert server.connections == 2


async def test_a_malformed_answer_is_an_error_naming_it():
    async with Server(answer_once(b"NOT HTTP AT ALL\r\n\r\n")) as server:
        client = pool(server.port)
        with pytest.raises(HttpError, match="malformed HTTP answer"):
            await client.post("/x", b"", {})
        await client.aclose()


async def test_a_refused_connection_is_an_error():
    client = pool(free_port())
    with pytest.raises(HttpError, match="cannot connect"):
        await client.post("/x", b"", {})


async def test_concurrent_requests_never_open_more_than_max_connections():
    async def slow(reader, writer, server: Server) -> None:
        while True:
            await server.read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(reply(200, b"{}"))
            await writer.drain()

    async with Server(slow) as server:
        client = pool(server.port, max_connections=2)
        answers = await asyncio.gather(*(client.post("/x", b"", {}) for _ in range(8)))
        await client.aclose()
    assert [status for status, _ in answers] == [200] * 8
    assert server.most_open == 2


def test_only_http_urls():
    with pytest.raises(ValueError, match="is not an http"):
        HttpPool("ftp://cp", max_connections=1, timeout_seconds=1)
