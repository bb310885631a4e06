"""One staff access token per (API URL, staff email), shared by every operation of a provider-host process.

Pulumi's provider host serves several gRPC calls at once (a thread pool), and Saleor refuses a staff login
from an address while another login from it is in progress (its per-IP login throttle answers
LOGIN_ATTEMPT_DELAYED). So logins are never made per operation: `TOKENS.grant()` returns the cached token
while it has more than a safety margin left, otherwise renews it with `tokenRefresh` or, failing that, a new
`tokenCreate`. Renewals are single-flight across the whole process: one lock, so at most one login (or
refresh) is in flight however many threads or event loops ask; the others wait and take its result.

A refused login (wrong password, inactive user) is remembered for the same credentials, so the operations
queued behind it fail at once instead of each trying again: every failed login lengthens Saleor's lockout.
Tokens live only in this process's memory (never on the pickled provider, never in state or messages).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Saleor's access JWT lives JWT_TTL_ACCESS (5 minutes unless the operator changed it); used when a token does not
# say its own lifetime.
DEFAULT_ACCESS_SECONDS = 300.0
MAX_MARGIN_SECONDS = 30.0

Key = tuple[str, str]  # (api_url, staff_email)


@dataclass(frozen=True)
class Grant:
    """A staff access token, the refresh token that renews it, and when to stop using it (monotonic clock)."""

    access: str = field(repr=False)
    refresh: str | None = field(repr=False)
    permissions: frozenset[str]
    renew_at: float

    def fresh(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.renew_at


def lifetime_seconds(token: str) -> float:
    """exp - iat of a JWT (read, not verified: only Saleor verifies it); Saleor's default when absent."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        seconds = float(claims["exp"]) - float(claims["iat"])
    except (IndexError, KeyError, TypeError, ValueError):
        return DEFAULT_ACCESS_SECONDS
    return seconds if seconds > 0 else DEFAULT_ACCESS_SECONDS


def grant_for(access: str, refresh: str | None, permissions: frozenset[str], received: float) -> Grant:
    """A grant renewed shortly before expiry: a fifth of its life early, at most 30 s early.

    The lifetime is measured on this host's monotonic clock from when the token arrived, so clock skew between
    this host and Saleor does not matter.
    """
    life = lifetime_seconds(access)
    return Grant(access, refresh, permissions, received + life - min(MAX_MARGIN_SECONDS, life / 5))


class LoginRefused(Exception):
    """Saleor refused these credentials; kept so queued operations fail without another attempt."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class TokenStore:
    """Process-wide, thread-safe and event-loop-safe cache of staff grants (see the module docstring)."""

    def __init__(self) -> None:
        self._state = threading.Lock()  # guards the dicts below; never held across a request
        self._flight = threading.Lock()  # held while one login or refresh is in flight
        self._grants: dict[Key, Grant] = {}
        self._refused: dict[tuple[Key, bytes], Exception] = {}
        self._failures: dict[Key, tuple[int, Exception | None]] = {}  # renewals that failed, and the last error
        self._salt = secrets.token_bytes(16)

    def _fingerprint(self, password: str) -> bytes:
        return hmac.new(self._salt, password.encode(), hashlib.sha256).digest()

    def cached(self, key: Key) -> Grant | None:
        with self._state:
            grant = self._grants.get(key)
        return grant if grant is not None and grant.fresh() else None

    def grant(
        self,
        key: Key,
        password: str,
        login: Callable[[], Grant],
        refresh: Callable[[str], Grant | None],
    ) -> Grant:
        """The fresh grant for `key`, renewing it (refresh, else login) when needed; one renewal at a time.

        A call that waited for a renewal which then failed fails with it: it would only repeat the same attempts
        (Saleor down, or throttling this address) for another full retry deadline.
        """
        grant = self.cached(key)
        if grant is not None:
            return grant
        refused_key = (key, self._fingerprint(password))
        with self._state:
            failures_before = self._failures.get(key, (0, None))[0]
        with self._flight:
            with self._state:
                refused = self._refused.get(refused_key)
                grant = self._grants.get(key)
                failures, failure = self._failures.get(key, (0, None))
            if refused is not None:
                raise refused
            if grant is not None and grant.fresh():
                return grant  # renewed by the call we waited for
            if failures != failures_before and failure is not None:
                raise failure  # the renewal we waited for failed
            try:
                renewed = refresh(grant.refresh) if grant is not None and grant.refresh else None
                if renewed is None:
                    renewed = login()
            except LoginRefused as exc:
                with self._state:
                    self._refused[refused_key] = exc.error
                raise exc.error from None
            except Exception as exc:
                with self._state:
                    self._failures[key] = (failures + 1, exc)
                raise
            with self._state:
                self._grants[key] = renewed
            return renewed

    async def grant_async(self, key: Key, *renew: Any) -> Grant:
        """`grant(key, password, login, refresh)` for coroutines: a cached grant at once, a renewal in a worker
        thread, so the event loop keeps running while it waits."""
        return self.cached(key) or await asyncio.to_thread(self.grant, key, *renew)

    def invalidate(self, key: Key, access: str) -> None:
        """Drop the grant if it is still `access` (Saleor said it expired or was revoked); a newer one stays."""
        with self._state:
            grant = self._grants.get(key)
            if grant is not None and grant.access == access:
                self._grants[key] = Grant(grant.access, grant.refresh, grant.permissions, renew_at=0.0)

    def clear(self) -> None:
        with self._state:
            self._grants.clear()
            self._refused.clear()
            self._failures.clear()


TOKENS = TokenStore()
