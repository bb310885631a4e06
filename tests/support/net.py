"""Loopback helpers shared by the service, provider and end-to-end tests."""

from __future__ import annotations

import functools
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from tests.support import servers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def client_tls() -> ssl.SSLContext:
    """httpx's default verifying TLS context, made once for every HTTP client of the tests (``verify=``): each
    client that makes its own loads the CA bundle, ~50 ms of CPU, and the tests make hundreds of clients."""
    return httpx.create_ssl_context()


class ProcessExited(RuntimeError):
    """The process being waited for exited before it answered."""


def wait_http(url: str, *, timeout: float = 20.0, ok=lambda r: r.status_code < 500,
              proc: subprocess.Popen | None = None, log: Callable[[], str] = lambda: "") -> httpx.Response:
    """Poll ``url`` until it answers (any status accepted by ``ok``) or fail after ``timeout`` seconds.

    With ``proc``, a process that exits first fails at once (``ProcessExited``); ``log`` gives the text whose
    tail either failure shows.
    """
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    # One client for the whole wait: a client per poll would take a core from the process being waited for.
    with httpx.Client(timeout=1.0, verify=client_tls()) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ProcessExited(f"the process serving {url} exited with {proc.returncode}:\n{log()[-3000:]}")
            try:
                response = client.get(url)
                if ok(response):
                    return response
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.05)
    tail = log()[-3000:]
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}" + (f"\n{tail}" if tail else ""))


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def run_uvicorn_in_thread(app, port: int | None = None, *, host: str = "127.0.0.1",
                          wait_for_shutdown: bool = True) -> Iterator[str]:
    """Serve an ASGI app on loopback in a background thread; yields its base URL and stops it after.

    Only uvicorn's public API: ``Server.started`` says it listens, ``should_exit`` asks it to stop (uvicorn
    looks at the flag every 0.1 s, pauses a fixed 0.1 s, then runs the app's lifespan shutdown). A test whose
    client needs no socket serves the app in-process instead (``httpx.ASGITransport``).

    ``wait_for_shutdown=False`` is for a fake whose shutdown nothing waits on (no lifespan work, a port of its
    own): leaving the block only asks it to stop, and the test goes on while it closes.
    """
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.02)
    url = f"http://{host}:{port}"
    servers.announce(server, f"uvicorn serving {type(app).__name__} (in-process)", url, None)
    try:
        yield url
    finally:
        server.should_exit = True
        if wait_for_shutdown:
            thread.join(timeout=10)
