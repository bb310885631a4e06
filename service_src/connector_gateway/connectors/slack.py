"""Slack Web API: chat.postMessage with a bot token (Bearer); errors arrive as HTTP 200 ``{"ok": false}``."""

from __future__ import annotations

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


class PostMessageArgs(ToolArguments):
    channel: Annotated[str, StringConstraints(pattern=r"^#?[A-Za-z0-9._-]{1,80}$")]
    text: Annotated[str, StringConstraints(min_length=1, max_length=40000)]
    thread_ts: Annotated[str, StringConstraints(pattern=r"^\d{1,12}\.\d{1,8}$")] | None = None


async def post_message(ctx: CallContext, creds: SlackCredentials, args: PostMessageArgs) -> dict[str, Any]:
    payload: dict[str, Any] = {"channel": args.channel, "text": args.text}
    if args.thread_ts:
        payload["thread_ts"] = args.thread_ts
    response = await send(
        ctx, CONNECTOR, "POST", f"{ctx.base_url}/chat.postMessage", idempotent=False, payload=payload,
        headers={"authorization": f"Bearer {creds.bot_token}"},
    )
    if response.status_code >= 400:
        raise upstream_error(CONNECTOR, response)
    body = json_body(CONNECTOR, response)
    if body.get("ok") is not True:
        code = sanitized(body.get("error")) or "unknown_error"
        status = _ERROR_STATUS.get(code, 400)
        raise GatewayError(status, "upstream_rejected", f"slack refused the call: {code}")
    return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}




TOOLS = (
    ToolSpec("slack.post_message", CONNECTOR, "Post a message to a Slack channel.", PostMessageArgs,
             SlackCredentials, idempotent=False, run=post_message),
)
