"""OAuth 2.0 refresh for per-user connections: what a connector raises when the SaaS says the access token
expired, what a refresh answers, and the form POST every vendor's token endpoint takes (RFC 6749 section 6).

Each connector module has its own ``refresh`` (the endpoint, the client authentication and the error shapes
differ); user_connections.py decides when to call it and writes the answer back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import aiohttp
from pydantic import StringConstraints

from service_src.connector_gateway.connectors.base import (
    CallContext,
    Credentials,
    UpstreamResponse,
    json_body,
    sanitized,
    upstream_error,
)
from service_src.connector_gateway.errors import GatewayError

Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class TokenExpired(GatewayError):
    """The SaaS refused the access token as expired. For a per-user connection the gateway refreshes it and
    retries once; anywhere else it is the 401 ``upstream_rejected`` it always was."""

    def __init__(self, connector: str, detail: str) -> None:
        super().__init__(401, "upstream_rejected", f"{connector} refused the call: {detail}")


class RefreshRefused(Exception):
    """The token endpoint refused the refresh token (revoked, expired, rotated away): the user must connect again.
    The message is the vendor's short error code only."""


class OAuthApp(Credentials):
    """The binding's OAuth client, stored at the binding's own path for a per-user binding."""

    client_id: Token
    client_secret: Token


@dataclass(frozen=True, slots=True)
class RefreshedTokens:
    access_token: str
    refresh_token: str | None  # None: the vendor keeps the old one (no rotation)
    expires_in: float | None

    def stored(self, previous: dict[str, str], clock=time.time) -> dict[str, str]:
        """The user's credential after this refresh: new access token, the rotated refresh token if any, and
        ``expires_at`` (epoch seconds) when the vendor said."""
        data = {**previous, "access_token": self.access_token}
        if self.refresh_token:
            data["refresh_token"] = self.refresh_token
        if self.expires_in is not None:
            data["expires_at"] = str(int(clock() + self.expires_in))
        else:
            data.pop("expires_at", None)
        return data


@dataclass(frozen=True, slots=True)
class UserAuth:
    """A connector's per-user connection: the user's credential model (merged with the binding's app data),
    the binding's OAuth client model, and the vendor's refresh call."""

    credentials: type[Credentials]
    app: type[OAuthApp]
    refresh: Callable[[CallContext, Any, str], Awaitable[RefreshedTokens]]
    # Keys of the user's credential that come from the binding (the account), never from the user's own entry.
    from_binding: tuple[str, ...] = ()

    def user_credentials(self, app_data: dict[str, str], user_data: dict[str, str]) -> dict[str, str]:
        """The user's entry with the binding's account keys: tokens only from the user, the account only from the
        binding, so neither entry can point the call at another user's token or another account."""
        return {**{k: v for k, v in user_data.items() if k not in self.from_binding},
                **{k: app_data[k] for k in self.from_binding if k in app_data}}


def tokens_from(answer: dict[str, Any]) -> RefreshedTokens:
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise GatewayError(502, "upstream_error", "the token endpoint answered without an access_token")
    refresh = answer.get("refresh_token")
    expires = answer.get("expires_in")
    return RefreshedTokens(access, refresh if isinstance(refresh, str) and refresh else None,
                           float(expires) if isinstance(expires, int | float) else None)


def refreshed(connector: str, response: UpstreamResponse, code_key: str) -> RefreshedTokens:
    """A token endpoint's answer: 5xx is the vendor's trouble (502), any 4xx a refusal naming its error code."""
    if response.status_code >= 500:
        raise upstream_error(connector, response)
    if response.status_code >= 400:
        try:
            code = response.json().get(code_key)
        except (ValueError, AttributeError):
            code = None
        raise RefreshRefused(sanitized(code) or f"HTTP {response.status_code}")
    return tokens_from(json_body(connector, response))


async def post_form(ctx: CallContext, connector: str, url: str, fields: dict[str, str],
                    headers: dict[str, str] | None = None) -> UpstreamResponse:
    """One POST of ``application/x-www-form-urlencoded`` fields, never retried (a refresh token may be single use)."""
    try:
        async with ctx.client.post(url, data=fields, headers=headers or {}, timeout=ctx.timeout,
                                   allow_redirects=False) as response:
            return UpstreamResponse(response.status, dict(response.headers), await response.read())
    except TimeoutError:
        raise GatewayError(504, "upstream_timeout", f"{connector} token endpoint did not answer") from None
    except aiohttp.ClientError as exc:
        raise GatewayError(502, "upstream_unreachable",
                           f"{connector} token endpoint unreachable ({type(exc).__name__})") from None
