"""A JWKS cache on PyJWT: signing keys by kid, fetched from one URL.

Keys stay fresh for ``ttl_seconds``. A kid not in the cached set triggers one refetch, at most once per
``min_refetch_seconds`` (a failed or just-finished fetch counts), so a flood of forged kids cannot turn the
service into a JWKS hammer. When a refetch fails, keys already cached keep verifying. With no usable answer the
caller gets ``KeysUnavailable`` (answer 503, so the sender retries), never a guess. Only keys whose algorithm
is one of ``algorithms`` are kept (PyJWT takes it from the key's ``alg``, or ``kty``/``crv``, and refuses a token
whose header names another), so a symmetric (``oct``) key in the set can never verify anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection

import jwt
import structlog

log = structlog.get_logger("cmp.jwks")


class FetchError(Exception):
    """The JWKS document could not be had (network, status, not JSON); the message names what failed."""


class KeysUnavailable(Exception):
    """No key to verify with and none could be fetched: answer 503, so the sender retries later."""


class UnknownKey(Exception):
    """The JWKS, freshly fetched, does not publish this kid: the signature is refused."""


Fetch = Callable[[str], Awaitable[object]]  # GET url -> the parsed JSON document; FetchError on failure


def signing_keys(document: object, algorithms: Collection[str], url: str) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document by kid; entries that are not one are skipped with a log line."""
    keys: dict[str, jwt.PyJWK] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            log.warning("jwks_key_skipped", url=url, kid=entry["kid"][:64], reason="not a usable public key")
            continue
        if key.algorithm_name not in algorithms:
            log.warning("jwks_key_skipped", url=url, kid=entry["kid"][:64], reason=f"algorithm {key.algorithm_name}")
            continue
        keys[entry["kid"]] = key
    return keys


class JwksCache:
    """The keys published at ``url``; ``fetches`` counts attempts and ``generation`` changes with the key set."""

    def __init__(
        self,
        url: str,
        fetch: Fetch,
        *,
        ttl_seconds: float,
        min_refetch_seconds: float,
        algorithms: Collection[str],
        clock: Callable[[], float] = time.monotonic,
        on_fetch: Callable[[bool], None] | None = None,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._algorithms = frozenset(algorithms)
        self._clock = clock
        self._on_fetch = on_fetch
        self._keys: dict[str, jwt.PyJWK] = {}
        self._published: dict[str, dict] = {}  # the JWKS entries behind _keys, to tell a changed set
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._last_failed = False
        self._lock = asyncio.Lock()
        self.fetches = 0
        self.generation = 0  # bumped when the set of keys changes, so caches of verified tokens can drop answers

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self._ttl

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key for ``kid``; UnknownKey when the JWKS does not publish it, KeysUnavailable on fetch trouble."""
        if kid in self._keys and self._fresh():
            return self._keys[kid]
        async with self._lock:
            if not (kid in self._keys and self._fresh()):
                now = self._clock()
                # Stale keys or an unknown kid: refetch, but never twice within the rate limit; meanwhile stale
                # keys keep verifying.
                if self._attempted_at is None or now - self._attempted_at >= self._min_refetch:
                    await self._refresh()
        found = self._keys.get(kid)
        if found is not None:
            return found
        if self._fetched_at is None:
            raise KeysUnavailable(f"no JWKS could be fetched from {self.url}")
        if self._last_failed:
            raise KeysUnavailable(f"kid {kid[:64]!r} is unknown and the JWKS at {self.url} could not be refetched")
        raise UnknownKey(f"kid {kid[:64]!r} is not in the JWKS at {self.url}")

    async def ready(self) -> tuple[bool, str]:
        """Whether keys are at hand (fetching them if there are none yet), and why not."""
        if self._fetched_at is None:
            async with self._lock:
                if self._fetched_at is None:
                    await self._refresh()
        if not self._keys:
            return False, "JWKS publishes no signing keys" if self._fetched_at is not None else "JWKS unreachable"
        return True, "ok"

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            document = await self._fetch(self.url)
        except FetchError as exc:
            self._last_failed = True
            self._report(ok=False)
            log.warning("jwks_fetch_failed", url=self.url, error=str(exc))
            return
        keys = signing_keys(document, self._algorithms, self.url)
        published = {kid: document_entry for kid, document_entry in _entries(document).items() if kid in keys}
        if published != self._published:
            self.generation += 1
        self._keys, self._published = keys, published
        self._fetched_at = self._clock()
        self._last_failed = False
        self._report(ok=True)
        log.info("jwks_fetched", url=self.url, kids=sorted(keys))

    def _report(self, *, ok: bool) -> None:
        if self._on_fetch is not None:
            self._on_fetch(ok)


def _entries(document: object) -> dict[str, dict]:
    entries = document.get("keys") if isinstance(document, dict) else None
    return {e["kid"]: e for e in entries if isinstance(e, dict)} if isinstance(entries, list) else {}
