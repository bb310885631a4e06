"""Per-org rate limit: a token bucket of RATE_LIMIT_REQUESTS_PER_MINUTE, refilled continuously.

Limits are per process (per replica and worker): the ConfigMap value is what one process admits.
"""

from __future__ import annotations

import math
import time

from service_src.connector_gateway.errors import GatewayError

_MAX_TRACKED_ORGS = 100_000


class RateLimiter:
    def __init__(self, per_minute: int, *, clock=time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, org: str) -> None:
        """Take one token for ``org`` or raise 429 with the seconds until the next one."""
        now = self._clock()
        tokens, last = self._buckets.get(org, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[org] = (tokens, now)
            retry = max(1, math.ceil((1.0 - tokens) / self._rate))
            raise GatewayError(429, "rate_limited", f"org exceeded {int(self._capacity)} requests per minute",
                               headers={"retry-after": str(retry)})
        if len(self._buckets) >= _MAX_TRACKED_ORGS and org not in self._buckets:
            self._buckets.clear()  # bounded memory; a full bucket is the default anyway
        self._buckets[org] = (tokens - 1.0, now)
