"""Zendesk Support API v2: tickets, with basic auth ``{email}/token:{api_token}``, or a user's OAuth access token
(Bearer) on a per-user binding.

OAuth as Zendesk documents it (developer.zendesk.com, "OAuth Tokens for Grant Types", ``POST /oauth/tokens``):
a call with an expired access token answers 401 ``{"error": "invalid_token"}``; ``grant_type=refresh_token``
with ``client_id``, ``client_secret`` and ``refresh_token`` answers a new access token and a new refresh token
and invalidates both old ones (``expires_in``, ``refresh_token_expires_in``); a refused refresh is a 4xx with
``error: invalid_grant``.
"""

from __future__ import annotations

from base64 import b64encode
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from service_src.connector_gateway.connectors.base import (
    CallContext,
    Credentials,
    Email,
    ToolArguments,
    ToolSpec,
    UpstreamResponse,
    json_body,
    send,
    upstream_error_from_json,
)
from service_src.connector_gateway.connectors.oauth import (
    OAuthApp,
    RefreshedTokens,
    Token,
    TokenExpired,
    post_form,
    refreshed,
)
from service_src.connector_gateway.errors import GatewayError

CONNECTOR = "zendesk"


Subdomain = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class ZendeskCredentials(Credentials):
    subdomain: Subdomain
    email: Email
    api_token: Annotated[str, StringConstraints(min_length=1)]

    def authorization(self) -> str:
        """API token auth: basic auth with user ``{email}/token`` and the token as password."""
        pair = f"{self.email}/token:{self.api_token}".encode()
        return "Basic " + b64encode(pair).decode("ascii")


class ZendeskUserCredentials(Credentials):
    """A per-user connection: the account's subdomain (the binding's) and the user's OAuth access token."""

    subdomain: Subdomain
    access_token: Token

    def authorization(self) -> str:
        return f"Bearer {self.access_token}"


class CreateTicketArgs(ToolArguments):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=65536)]
    priority: Literal["urgent", "high", "normal", "low"] | None = None
    requester_email: Email | None = None
    requester_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    tags: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_:-]{1,80}$")]] = Field(
        default_factory=list, max_length=20
    )


class GetTicketArgs(ToolArguments):
    ticket_id: int = Field(gt=0, lt=2**53)


AnyCredentials = ZendeskCredentials | ZendeskUserCredentials


def _base(ctx: CallContext, creds: AnyCredentials | ZendeskOAuthApp) -> str:
    return ctx.base_url.replace("{subdomain}", creds.subdomain)


def _auth(creds: AnyCredentials) -> dict[str, str]:
    return {"authorization": creds.authorization()}


def _refused(creds: AnyCredentials, response: UpstreamResponse) -> GatewayError:
    error = upstream_error_from_json(CONNECTOR, response, "error")
    if isinstance(creds, ZendeskUserCredentials) and response.status_code == 401 \
            and error.message.endswith(": invalid_token"):
        return TokenExpired(CONNECTOR, "invalid_token")
    return error


class ZendeskOAuthApp(OAuthApp):
    """A per-user binding's OAuth client, and the account (subdomain) its users connect to."""

    subdomain: Subdomain


async def refresh(ctx: CallContext, app: ZendeskOAuthApp, refresh_token: str) -> RefreshedTokens:
    """``POST https://{subdomain}.zendesk.com/oauth/tokens`` with ``grant_type=refresh_token``."""
    url = f"{_base(ctx, app)}/oauth/tokens"
    response = await post_form(ctx, CONNECTOR, url, {
        "grant_type": "refresh_token", "client_id": app.client_id, "client_secret": app.client_secret,
        "refresh_token": refresh_token})
    return refreshed(CONNECTOR, response, "error")


async def create_ticket(ctx: CallContext, creds: AnyCredentials, args: CreateTicketArgs) -> dict[str, Any]:
    ticket: dict[str, Any] = {"subject": args.subject, "comment": {"body": args.body}}
    if args.priority:
        ticket["priority"] = args.priority
    if args.requester_email:
        ticket["requester"] = {"email": args.requester_email, "name": args.requester_name or args.requester_email}
    if args.tags:
        ticket["tags"] = args.tags
    response = await send(ctx, CONNECTOR, "POST", f"{_base(ctx, creds)}/api/v2/tickets.json",
                          idempotent=False, payload={"ticket": ticket}, headers=_auth(creds))
    if response.status_code >= 400:
        raise _refused(creds, response)
    return json_body(CONNECTOR, response)


async def get_ticket(ctx: CallContext, creds: AnyCredentials, args: GetTicketArgs) -> dict[str, Any]:
    response = await send(ctx, CONNECTOR, "GET", f"{_base(ctx, creds)}/api/v2/tickets/{args.ticket_id}.json",
                          idempotent=True, headers=_auth(creds))
    if response.status_code >= 400:
        raise _refused(creds, response)
    return json_body(CONNECTOR, response)


TOOLS = (
    ToolSpec("zendesk.create_ticket", CONNECTOR, "Create a Zendesk support ticket.", CreateTicketArgs,
             ZendeskCredentials, idempotent=False, run=create_ticket),
    ToolSpec("zendesk.get_ticket", CONNECTOR, "Read one Zendesk ticket by id.", GetTicketArgs,
             ZendeskCredentials, idempotent=True, run=get_ticket),
)
