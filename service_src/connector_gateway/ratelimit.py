"""Per-org rate limit of RATE_LIMIT_REQUESTS_PER_MINUTE.

Without RATE_LIMIT_STORAGE_URL each process (replica and worker) keeps its own token bucket, refilled
continuously: the value is what one process admits. With ``RATE_LIMIT_STORAGE_URL=redis://...`` every process
shares one moving window per org in Redis (the ``limits`` library, its atomic Lua script), so the replicas
together admit the value per minute. While Redis cannot be reached, RATE_LIMIT_STORAGE_FAILURE decides: ``open``
admits the call (counted in ``cmp_connector_rate_limit_storage_errors_total``, one log line when the outage
starts and one when it ends), ``closed`` refuses it with 503 ``rate_limit_unavailable``.
"""

from __future__ import annotations

import logging
import math
import time

import redis.asyncio
from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from service_src.connector_gateway.errors import GatewayError, unavailable
from service_src.connector_gateway.metrics import GatewayMetrics
from service_src.connector_gateway.settings import GatewaySettings, StorageFailure

log = logging.getLogger("cmp.connector_gateway.ratelimit")

_MAX_TRACKED_ORGS = 100_000
KEY_PREFIX = "cmp-connector-ratelimit"


def _limited(per_minute: int, retry_after: int) -> GatewayError:
    return GatewayError(429, "rate_limited", f"org exceeded {per_minute} requests per minute",
                        headers={"retry-after": str(max(1, retry_after))})


class RateLimiter:
    """The per-process token bucket."""

    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    async def check(self, org: str) -> None:
        """Take one token for ``org`` or raise 429 with the seconds until the next one."""
        now = self._clock()
        tokens, last = self._buckets.get(org, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[org] = (tokens, now)
            raise _limited(int(self._capacity), math.ceil((1.0 - tokens) / self._rate))
        if len(self._buckets) >= _MAX_TRACKED_ORGS and org not in self._buckets:
            self._buckets.clear()  # bounded memory; a full bucket is the default anyway
        self._buckets[org] = (tokens - 1.0, now)

    async def aclose(self) -> None:
        return None


class SharedRateLimiter(RateLimiter):
    """One moving window per org in Redis, shared by every process that points at the same storage."""

    def __init__(self, url: str, per_minute: int, *, failure: StorageFailure, timeout_seconds: float,
                 metrics: GatewayMetrics) -> None:
        self._per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute)
        # The pool is ours, so the app can close it; connections open on first use, inside the serving loop.
        self._pool = redis.asyncio.ConnectionPool.from_url(url, socket_timeout=timeout_seconds,
                                                           socket_connect_timeout=timeout_seconds)
        self._storage = RedisStorage("async+" + url, implementation="redispy", wrap_exceptions=True,
                                     key_prefix=KEY_PREFIX, connection_pool=self._pool)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._failure = failure
        self._metrics = metrics
        self._down = False

    async def check(self, org: str) -> None:
        try:
            if await self._limiter.hit(self._item, org):
                self._recovered()
                return
            stats = await self._limiter.get_window_stats(self._item, org)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        self._recovered()
        raise _limited(self._per_minute, math.ceil(stats.reset_time - time.time()))

    def _storage_failed(self, exc: StorageError) -> None:
        self._metrics.rate_limit_storage_errors.inc()
        if not self._down:
            self._down = True
            action = "admitting calls unlimited" if self._failure is StorageFailure.OPEN else "refusing calls"
            log.error("rate-limit storage unreachable (%s): %s until it answers (RATE_LIMIT_STORAGE_FAILURE=%s)",
                      type(exc.storage_error).__name__, action, self._failure.value)
        if self._failure is StorageFailure.CLOSED:
            raise unavailable("rate_limit_unavailable", "the shared rate-limit storage is unreachable")

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("rate-limit storage reachable again: the shared limit applies")

    async def aclose(self) -> None:
        await self._pool.disconnect()


def rate_limiter(settings: GatewaySettings, metrics: GatewayMetrics) -> RateLimiter:
    if settings.rate_limit_storage_url:
        return SharedRateLimiter(settings.rate_limit_storage_url, settings.rate_limit_requests_per_minute,
                                 failure=settings.rate_limit_storage_failure,
                                 timeout_seconds=settings.rate_limit_storage_timeout_seconds, metrics=metrics)
    return RateLimiter(settings.rate_limit_requests_per_minute)
