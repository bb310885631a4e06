"""Per-user connections: on a binding the policy marks ``per_user``, each user's call runs with that user's own
account, never the binding's or another user's.

The user is the verified token's ``sub`` (never a header or an argument). Their credential lives at
``<prefix>/{org}/{project}/{binding}/users/{sub}`` (``access_token``, ``refresh_token``, ``expires_at``); the
binding's own path holds the OAuth client (``client_id``, ``client_secret``; for Zendesk also ``subdomain``).
Nothing stored there yet is 403 ``connection_required`` with the control plane's connect URL for the binding and
the user (MCP: the URL-elicitation error, -32042).

When the SaaS answers that the access token expired, the stored refresh token buys a new one: one refresh per
credential at a time in this process (a lock per path; the calls waiting on it use its answer), written back with
KV v2 check-and-set on the version that was read, so of two writers only one wins and the loser uses the
winner's token. The call is then retried once. A refused refresh is ``connection_required`` again, unless
another replica's refresh (which rotated the token away) lands in Vault within a moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from service_src.connector_gateway.auth import Caller
from service_src.connector_gateway.connectors import USER_AUTH, CallContext, ToolSpec
from service_src.connector_gateway.connectors.oauth import RefreshedTokens, RefreshRefused, TokenExpired
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.policy import PolicyBinding
from service_src.connector_gateway.vault import CredentialStore

# A refused refresh waits up to ~1.5 s (0.05 s doubling, five checks) for another replica's write.
SETTLE_FIRST_PAUSE_S = 0.05
SETTLE_CHECKS = 5


class ConnectionRequired(GatewayError):
    """403 ``connection_required``: the user has to connect (again) at ``connect_url``."""

    def __init__(self, binding: str, connect_url: str, reason: str) -> None:
        super().__init__(403, "connection_required", f"binding {binding!r} acts as each user's own account and "
                         f"yours is not connected ({reason}): connect it at connect_url, then call again")
        self.binding = binding
        self.connect_url = connect_url

    def body(self) -> dict[str, object]:
        return {**super().body(), "connect_url": self.connect_url}


def connect_url(base: str, sub: str) -> str:
    """The policy's connect URL for the binding with ``user=<sub>`` added, so the control plane's page can refuse
    a signed-in user who is not the one the agent acts for."""
    parts = urlsplit(base)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("user", sub)])
    return urlunsplit(parts._replace(query=query))


@dataclass(frozen=True, slots=True)
class Stored:
    data: dict[str, str]
    version: int


class UserConnections:
    def __init__(self, store: CredentialStore, *, ttl_seconds: float, clock=time.monotonic) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Stored]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(self, spec: ToolSpec, ctx: CallContext, caller: Caller, entry: PolicyBinding,
                  arguments: Any) -> dict[str, Any]:
        auth = USER_AUTH[spec.connector]
        binding = entry.binding
        path = self._store.user_path(caller.org, caller.project, binding, caller.sub)
        app_data = await self._store.get(caller.org, caller.project, binding)
        app = replace(spec, credentials=auth.app).parse_credentials(binding, app_data)
        user_spec = replace(spec, credentials=auth.credentials)

        def credentials(stored: Stored) -> Any:
            return user_spec.parse_credentials(binding, auth.user_credentials(app_data, stored.data))

        stored = await self._current(path, entry, caller)
        try:
            return await spec.run(ctx, credentials(stored), arguments)
        except TokenExpired:
            pass
        fresh = await self._refreshed(path, stored, entry, caller, lambda token: auth.refresh(ctx, app, token))
        try:
            return await spec.run(ctx, credentials(fresh), arguments)
        except TokenExpired:
            raise self._required(entry, caller, "the SaaS refused the refreshed token") from None

    def _required(self, entry: PolicyBinding, caller: Caller, reason: str) -> ConnectionRequired:
        return ConnectionRequired(entry.binding, connect_url(entry.connect_url or "", caller.sub), reason)

    async def _read(self, path: str, entry: PolicyBinding, caller: Caller) -> Stored:
        try:
            data, version = await self._store.read_versioned(path, entry.binding)
        except GatewayError as exc:
            if exc.code == "credentials_missing":
                raise self._required(entry, caller, "nothing is stored for you yet") from None
            raise
        stored = Stored(data, version)
        if self._ttl > 0:
            self._cache[path] = (self._clock() + self._ttl, stored)
        return stored

    async def _current(self, path: str, entry: PolicyBinding, caller: Caller) -> Stored:
        hit = self._cache.get(path)
        if hit is not None and self._clock() < hit[0]:
            return hit[1]
        return await self._read(path, entry, caller)

    async def _written_by_another(self, path: str, version: int, entry: PolicyBinding,
                                  caller: Caller) -> Stored | None:
        """After a refused refresh: the credential another replica writes within a moment, or None. A vendor that
        rotates refresh tokens refuses the old one as soon as that replica's refresh went through, which can be
        before its write reaches Vault."""
        pause = SETTLE_FIRST_PAUSE_S
        for _ in range(SETTLE_CHECKS):
            stored = await self._read(path, entry, caller)
            if stored.version != version:
                return stored
            await asyncio.sleep(pause)
            pause *= 2
        return None

    async def _refreshed(self, path: str, stale: Stored, entry: PolicyBinding, caller: Caller,
                         refresh: Callable[[str], Awaitable[RefreshedTokens]]) -> Stored:
        """A credential newer than ``stale``: another writer's if there is one, else this process's refresh."""
        async with self._locks.setdefault(path, asyncio.Lock()):
            hit = self._cache.get(path)
            if hit is not None and hit[1].version > stale.version:
                return hit[1]  # refreshed by a call that held the lock before this one
            current = await self._read(path, entry, caller)
            if current.version != stale.version:
                return current  # another replica wrote since this call read
            token = current.data.get("refresh_token")
            if not token:
                raise self._required(entry, caller, "the access token expired and no refresh token is stored")
            try:
                tokens = await refresh(token)
            except RefreshRefused as exc:
                newer = await self._written_by_another(path, current.version, entry, caller)
                if newer is not None:
                    return newer  # another replica refreshed (and rotated the token) first
                raise self._required(entry, caller, f"the SaaS refused the refresh: {exc}") from None
            data = tokens.stored(current.data)
            if await self._store.write_cas(path, data, current.version):
                fresh = Stored(data, current.version + 1)
                if self._ttl > 0:
                    self._cache[path] = (self._clock() + self._ttl, fresh)
                return fresh
            return await self._read(path, entry, caller)  # another writer won: its token is the one kept
