"""Saleor's signing keys: one JWKS cache (``service_src/common/jwks.py``) per allowed origin, each reading
``<origin>/.well-known/jwks.json``. Only RS256 keys are kept (the signature's alg is pinned to RS256). The caller
has already checked the origin against SALEOR_ALLOWED_ORIGINS, so the caches are as many as the allowed origins.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from service_src.common.jwks import Fetch, JwksCache, UnknownKey

from .signatures import ALGORITHM, SignatureError

JWKS_PATH = "/.well-known/jwks.json"


class SaleorKeys:
    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl_seconds: float,
        min_refetch_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._clock = clock
        self._caches: dict[str, JwksCache] = {}

    def cache(self, origin: str) -> JwksCache:
        found = self._caches.get(origin)
        if found is None:
            found = self._caches[origin] = JwksCache(
                origin + JWKS_PATH,
                self._fetch,
                ttl_seconds=self._ttl,
                min_refetch_seconds=self._min_refetch,
                algorithms={ALGORITHM},
                clock=self._clock,
            )
        return found

    async def key(self, origin: str, kid: str) -> jwt.PyJWK:
        """The key for kid; SignatureError when Saleor does not publish it, KeysUnavailable on fetch trouble."""
        try:
            return await self.cache(origin).key(kid)
        except UnknownKey as exc:
            raise SignatureError(f"Saleor-Signature {exc}") from exc
