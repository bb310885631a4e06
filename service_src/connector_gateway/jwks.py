"""The control plane's signing keys for caller tokens, fetched from CALLER_JWKS_URL and cached.

The same approach as the provisioner's JWKS cache: keys stay fresh for JWKS_CACHE_TTL_SECONDS; a kid we have
not seen triggers one refetch, at most once per JWKS_MIN_REFETCH_SECONDS, so a flood of forged kids cannot
turn the gateway into a JWKS hammer; when a refetch fails, keys already cached keep verifying. With no usable
answer the caller gets 503 ``auth_unavailable`` (fail closed), never a guess.

Each key is a PyJWT ``PyJWK``: its algorithm comes from the key (``alg``, or ``kty``/``crv``), and PyJWT
refuses a token whose header names another one. Only RS256, ES256 and EdDSA keys are kept, so a symmetric
(``oct``) key in the set can never verify anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
import jwt

from service_src.connector_gateway.errors import GatewayError, unauthorized, unavailable
from service_src.connector_gateway.metrics import GatewayMetrics
from service_src.connector_gateway.settings import CALLER_ALGORITHMS

log = logging.getLogger("cmp.connector_gateway.jwks")


def auth_unavailable(detail: str) -> GatewayError:
    return unavailable("auth_unavailable", f"caller keys unavailable ({detail}); retry later")


class CallerKeys:
    """Signing keys by kid from one JWKS URL."""

    def __init__(self, client: httpx.AsyncClient, url: str, *, ttl_seconds: float, min_refetch_seconds: float,
                 timeout_seconds: float, metrics: GatewayMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._url = url
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._metrics = metrics
        self._keys: dict[str, jwt.PyJWK] = {}
        self._published: dict[str, dict] = {}  # the JWKS entries behind _keys, to tell a changed set
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._last_failed = False
        self._lock = asyncio.Lock()
        self.fetches = 0  # attempts, for tests and metrics
        self.generation = 0  # bumped when the set of keys changes, so verified-token caches can drop old answers

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._ttl

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key for ``kid``: 401 when the JWKS does not publish it, 503 when no answer could be had."""
        if kid in self._keys and self._fresh():
            return self._keys[kid]
        async with self._lock:
            if not (kid in self._keys and self._fresh()):
                now = self._clock()
                if self._attempted_at is None or now - self._attempted_at >= self._min_refetch:
                    await self._refresh()
        found = self._keys.get(kid)
        if found is not None:
            return found
        if self._fetched_at is None:
            raise auth_unavailable("the caller JWKS could not be fetched")
        if self._last_failed:
            raise auth_unavailable(f"kid {kid[:64]!r} is unknown and the caller JWKS could not be refetched")
        raise unauthorized(f"token kid {kid[:64]!r} is not in the caller JWKS")

    async def ready(self) -> tuple[bool, str]:
        """For /readyz: keys are at hand (fetching them if there are none yet)."""
        if self._fetched_at is None:
            async with self._lock:
                if self._fetched_at is None:
                    await self._refresh()
        if not self._keys:
            return False, "no caller keys" if self._fetched_at is not None else "caller JWKS unreachable"
        return True, "ok"

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            response = await self._client.get(self._url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self._last_failed = True
            self._count("error")
            log.warning("caller JWKS fetch from %s failed: %s", self._url, type(exc).__name__)
            return
        keys: dict[str, jwt.PyJWK] = {}
        published: dict[str, dict] = {}
        entries = document.get("keys") if isinstance(document, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                log.warning("caller JWKS key %r skipped: not a usable public key", entry["kid"][:64])
                continue
            if key.algorithm_name not in CALLER_ALGORITHMS:
                log.warning("caller JWKS key %r skipped: algorithm %s is not one of %s", entry["kid"][:64],
                            key.algorithm_name, ", ".join(CALLER_ALGORITHMS))
                continue
            keys[entry["kid"]] = key
            published[entry["kid"]] = entry
        if published != self._published:
            self.generation += 1
        self._keys, self._published = keys, published
        self._fetched_at = self._clock()
        self._last_failed = False
        self._count("ok")
        log.info("caller JWKS fetched from %s: kids %s", self._url, ", ".join(sorted(keys)) or "(none)")

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.jwks_fetches.labels(result).inc()
