"""Slack Web API: chat.postMessage with a bot token, or a user's own token on a per-user binding (Bearer);
errors arrive as HTTP 200 ``{"ok": false}``.

Per-user tokens come from Slack's token rotation (docs.slack.dev, "Using token rotation" and the
``oauth.v2.access`` method reference): an access token lives ``expires_in`` seconds (12 hours), a call with an
expired one answers ``ok: false, error: token_expired``, and ``oauth.v2.access`` with
``grant_type=refresh_token`` answers a new access token and the refresh token to use next.
"""

from __future__ import annotations

from base64 import b64encode
from typing import Annotated, Any

from pydantic import StringConstraints

from service_src.connector_gateway.connectors.base import (
    CallContext,
    Credentials,
    ToolArguments,
    ToolSpec,
    json_body,
    sanitized,
    send,
    upstream_error,
)
from service_src.connector_gateway.connectors.oauth import (
    OAuthApp,
    RefreshedTokens,
    RefreshRefused,
    Token,
    TokenExpired,
    post_form,
    tokens_from,
)
from service_src.connector_gateway.errors import GatewayError

CONNECTOR = "slack"

# Slack's `ok: false` error codes, mapped to the HTTP status the caller sees.
_ERROR_STATUS = {
    "channel_not_found": 404,
    "not_in_channel": 403,
    "is_archived": 409,
    "msg_too_long": 400,
    "no_text": 400,
    "invalid_arguments": 400,
    "restricted_action": 403,
    "invalid_auth": 401,
    "not_authed": 401,
    "token_revoked": 401,
    "token_expired": 401,
    "account_inactive": 401,
    "missing_scope": 403,
    "ratelimited": 429,
}


class SlackCredentials(Credentials):
    bot_token: Annotated[str, StringConstraints(min_length=1)]

    def authorization(self) -> str:
        return f"Bearer {self.bot_token}"


class SlackUserCredentials(Credentials):
    """A per-user connection: the user's own (rotating) access token."""

    access_token: Token

    def authorization(self) -> str:
        return f"Bearer {self.access_token}"


class PostMessageArgs(ToolArguments):
    channel: Annotated[str, StringConstraints(pattern=r"^#?[A-Za-z0-9._-]{1,80}$")]
    text: Annotated[str, StringConstraints(min_length=1, max_length=40000)]
    thread_ts: Annotated[str, StringConstraints(pattern=r"^\d{1,12}\.\d{1,8}$")] | None = None


async def post_message(ctx: CallContext, creds: SlackCredentials | SlackUserCredentials,
                       args: PostMessageArgs) -> dict[str, Any]:
    payload: dict[str, Any] = {"channel": args.channel, "text": args.text}
    if args.thread_ts:
        payload["thread_ts"] = args.thread_ts
    response = await send(
        ctx, CONNECTOR, "POST", f"{ctx.base_url}/chat.postMessage", idempotent=False, payload=payload,
        headers={"authorization": creds.authorization()},
    )
    if response.status_code >= 400:
        raise upstream_error(CONNECTOR, response)
    body = json_body(CONNECTOR, response)
    if body.get("ok") is not True:
        code = sanitized(body.get("error")) or "unknown_error"
        if code == "token_expired":
            raise TokenExpired(CONNECTOR, code)
        status = _ERROR_STATUS.get(code, 400)
        raise GatewayError(status, "upstream_rejected", f"slack refused the call: {code}")
    return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}


async def refresh(ctx: CallContext, app: OAuthApp, refresh_token: str) -> RefreshedTokens:
    """``oauth.v2.access`` with ``grant_type=refresh_token``; the client authenticates with HTTP Basic, as Slack
    recommends. A refusal is HTTP 200 ``ok: false`` with a code such as ``invalid_refresh_token``."""
    basic = b64encode(f"{app.client_id}:{app.client_secret}".encode()).decode("ascii")
    response = await post_form(ctx, CONNECTOR, f"{ctx.base_url}/oauth.v2.access",
                               {"grant_type": "refresh_token", "refresh_token": refresh_token},
                               {"authorization": f"Basic {basic}"})
    if response.status_code >= 400:
        raise upstream_error(CONNECTOR, response)
    body = json_body(CONNECTOR, response)
    if body.get("ok") is not True:
        raise RefreshRefused(sanitized(body.get("error")) or "unknown_error")
    return tokens_from(body)


TOOLS = (
    ToolSpec("slack.post_message", CONNECTOR, "Post a message to a Slack channel.", PostMessageArgs,
             SlackCredentials, idempotent=False, run=post_message),
)
