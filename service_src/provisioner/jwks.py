"""Saleor's signing keys, fetched from <origin>/.well-known/jwks.json and cached per origin as a joserfc KeySet.

Keys stay fresh for JWKS_CACHE_TTL_SECONDS. A kid we have not seen triggers one refetch, at most once per
JWKS_MIN_REFETCH_SECONDS per origin, so a flood of forged kids cannot turn the provisioner into a JWKS hammer.
When a refetch fails, keys already cached keep working; with nothing cached, or an unknown kid that could not be
refetched, the delivery gets a 503 and Saleor retries it. Only RSA signing keys are kept (the signature's alg is
pinned to RS256).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet, RSAKey

from .signatures import KeysUnavailable, SignatureError

log = structlog.get_logger("cmp_provisioner.jwks")

JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class _OriginKeys:
    keys: KeySet = field(default_factory=lambda: KeySet([]))
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float | None = None  # last fetch attempt, successful or not
    last_failed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def get(self, kid: str) -> RSAKey | None:
        try:
            return self.keys.get_by_kid(kid)  # only RSA keys are imported
        except InvalidKeyIdError:
            return None


def key_set(document: object, origin: str) -> KeySet:
    """The RSA signing keys of a JWKS document; entries that are not one are skipped with a log line."""
    keys: list[RSAKey] = []
    entries = document.get("keys") if isinstance(document, dict) else None
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
            continue
        try:
            keys.append(RSAKey.import_key(jwk))
        except (JoseError, ValueError, TypeError):
            log.warning("jwks_key_skipped", origin=origin, kid=jwk["kid"][:64])
    return KeySet(keys)


class JwksCache:
    """Keys by (origin, kid). The caller has already checked the origin against the allow-list."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        min_refetch_seconds: float,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._clock = clock
        self._origins: dict[str, _OriginKeys] = {}
        self._client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False, transport=transport)
        self.fetches = 0  # successful and failed fetch attempts, for tests and metrics

    async def aclose(self) -> None:
        await self._client.aclose()

    async def key(self, origin: str, kid: str) -> RSAKey:
        """The key for kid; SignatureError when Saleor does not publish it, KeysUnavailable on fetch trouble."""
        entry = self._origins.get(origin)
        if entry is None:
            entry = self._origins[origin] = _OriginKeys()
        if self._fresh(entry) and (found := entry.get(kid)) is not None:
            return found
        async with entry.lock:
            if not (self._fresh(entry) and entry.get(kid) is not None):
                now = self._clock()
                # Stale keys or an unknown kid: refetch, but never twice within the rate limit (a failed or
                # just-finished fetch counts); meanwhile stale keys keep verifying.
                if entry.attempted_at is None or now - entry.attempted_at >= self._min_refetch:
                    await self._refresh(origin, entry)
        if (found := entry.get(kid)) is not None:
            return found
        if entry.fetched_at is None:
            raise KeysUnavailable(f"no JWKS could be fetched from {origin}")
        if entry.last_failed:
            raise KeysUnavailable(f"kid {kid[:64]!r} is unknown and the JWKS of {origin} could not be refetched")
        raise SignatureError(f"Saleor-Signature kid {kid[:64]!r} is not in the JWKS of {origin}")

    def _fresh(self, entry: _OriginKeys) -> bool:
        return entry.fetched_at is not None and self._clock() - entry.fetched_at < self._ttl

    async def _refresh(self, origin: str, entry: _OriginKeys) -> None:
        entry.attempted_at = self._clock()
        self.fetches += 1
        try:
            response = await self._client.get(origin + JWKS_PATH)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            entry.last_failed = True
            log.warning("jwks_fetch_failed", origin=origin, error=type(exc).__name__)
            return
        entry.keys = key_set(document, origin)
        entry.fetched_at = self._clock()
        entry.last_failed = False
        log.info("jwks_fetched", origin=origin, kids=sorted(k.kid for k in entry.keys if k.kid))
