"""The services' HTTP client: one aiohttp session per process, made on first use inside the running loop.

aiohttp rather than httpx: each service's throughput is the CPU of its outbound calls (the provisioner's worker,
the gateway's SaaS calls), and aiohttp spends a fraction of httpx's per call.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from .jwks import FetchError


class HttpSession:
    """A keep-alive pool (at most ``limit`` connections, ``limit_per_host`` to one host) that never follows
    redirects and ignores proxy variables; ``aclose`` at shutdown."""

    def __init__(self, *, timeout_seconds: float, limit: int = 100, limit_per_host: int = 0,
                 trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._trace_configs = list(trace_configs)  # tracing.py: client spans, traceparent passed on
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=self._limit_per_host, keepalive_timeout=30, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, trust_env=False, raise_for_status=False,
                trace_configs=self._trace_configs
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get_json(self, url: str) -> object:
        """GET ``url`` (no redirects) and parse its JSON; FetchError naming the failure otherwise."""
        try:
            async with self.get().get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise FetchError(f"HTTP {response.status}")
                return await response.json(content_type=None)
        except TimeoutError as exc:
            raise FetchError("timeout") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise FetchError(type(exc).__name__) from exc
