"""Saleor's signing keys, fetched from <origin>/.well-known/jwks.json and cached per origin.

A kid we have not seen triggers one refetch, at most once per JWKS_MIN_REFETCH_SECONDS per origin, so a flood
of forged kids cannot turn the provisioner into a JWKS hammer. When a refetch fails, keys already cached keep
working; with nothing cached the delivery gets a 503 and Saleor retries it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa

from .signatures import KeysUnavailable, SignatureError, rsa_key_from_jwk

log = structlog.get_logger("cmp_provisioner.jwks")

JWKS_PATH = "/.well-known/jwks.json"


@dataclass
class _OriginKeys:
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float | None = None  # last fetch attempt, successful or not
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


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

    async def key(self, origin: str, kid: str) -> rsa.RSAPublicKey:
        """The key for kid; SignatureError when Saleor does not publish it, KeysUnavailable on fetch trouble."""
        entry = self._origins.get(origin)
        if entry is None:
            entry = self._origins[origin] = _OriginKeys()
        if self._fresh(entry) and kid in entry.keys:
            return entry.keys[kid]
        async with entry.lock:
            if self._fresh(entry) and kid in entry.keys:
                return entry.keys[kid]
            now = self._clock()
            # Stale keys or an unknown kid: refetch, but never twice within the rate limit (a failed or
            # just-finished fetch counts); meanwhile stale keys keep verifying.
            if entry.attempted_at is None or now - entry.attempted_at >= self._min_refetch:
                await self._refresh(origin, entry)
        if kid in entry.keys:
            return entry.keys[kid]
        if entry.fetched_at is None:
            raise KeysUnavailable(f"no JWKS could be fetched from {origin}")
        raise SignatureError(f"Saleor-Signature kid {kid!r} is not in the JWKS of {origin}")

    def _fresh(self, entry: _OriginKeys) -> bool:
        return entry.fetched_at is not None and self._clock() - entry.fetched_at < self._ttl

    async def _refresh(self, origin: str, entry: _OriginKeys) -> None:
        entry.attempted_at = self._clock()
        self.fetches += 1
        url = origin + JWKS_PATH
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks_fetch_failed", origin=origin, error=type(exc).__name__)
            return
        keys: dict[str, rsa.RSAPublicKey] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            if jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[jwk["kid"]] = rsa_key_from_jwk(jwk)
            except (ValueError, SignatureError):
                log.warning("jwks_key_skipped", origin=origin, kid=jwk["kid"])
        entry.keys = keys
        entry.fetched_at = self._clock()
        log.info("jwks_fetched", origin=origin, kids=sorted(keys))
