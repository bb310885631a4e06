"""The control plane's signing keys for caller tokens: the JWKS cache of ``service_src/common/jwks.py`` on
CALLER_JWKS_URL, its answers turned into the gateway's errors.

A kid the JWKS does not publish is a 401; with no usable answer the caller gets 503 ``auth_unavailable`` (fail
closed), never a guess. Only RS256, ES256 and EdDSA keys are kept, so a symmetric (``oct``) key in the set can
never verify anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from service_src.common.jwks import Fetch, JwksCache, KeysUnavailable, UnknownKey
from service_src.connector_gateway.errors import GatewayError, unauthorized, unavailable
from service_src.connector_gateway.metrics import GatewayMetrics
from service_src.connector_gateway.settings import CALLER_ALGORITHMS


def auth_unavailable(detail: str) -> GatewayError:
    return unavailable("auth_unavailable", f"caller keys unavailable ({detail}); retry later")


class CallerKeys:
    """Signing keys by kid from one JWKS URL."""

    def __init__(self, fetch: Fetch, url: str, *, ttl_seconds: float, min_refetch_seconds: float,
                 metrics: GatewayMetrics | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        def counted(ok: bool) -> None:
            if metrics is not None:
                metrics.jwks_fetches.labels("ok" if ok else "error").inc()

        self.cache = JwksCache(url, fetch, ttl_seconds=ttl_seconds, min_refetch_seconds=min_refetch_seconds,
                               algorithms=CALLER_ALGORITHMS, clock=clock, on_fetch=counted)

    @property
    def generation(self) -> int:
        """Changes when the set of keys changes, so verified-token caches can drop old answers."""
        return self.cache.generation

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key for ``kid``: 401 when the JWKS does not publish it, 503 when no answer could be had."""
        try:
            return await self.cache.key(kid)
        except UnknownKey:
            raise unauthorized(f"token kid {kid[:64]!r} is not in the caller JWKS") from None
        except KeysUnavailable as exc:
            raise auth_unavailable(str(exc)) from None

    async def ready(self) -> tuple[bool, str]:
        """For /readyz: keys are at hand (fetching them if there are none yet)."""
        ok, detail = await self.cache.ready()
        return ok, detail if ok else f"caller {detail}"
