"""Zendesk Support API v2: tickets, with basic auth ``{email}/token:{api_token}``."""

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
    json_body,
    send,
    upstream_error_from_json,
)

CONNECTOR = "zendesk"


class ZendeskCredentials(Credentials):
    subdomain: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    email: Email
    api_token: Annotated[str, StringConstraints(min_length=1)]


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


def _base(ctx: CallContext, creds: ZendeskCredentials) -> str:
    return ctx.base_url.replace("{subdomain}", creds.subdomain)


def _auth(creds: ZendeskCredentials) -> dict[str, str]:
    """Zendesk API token auth: basic auth with user ``{email}/token`` and the token as password."""
    pair = f"{creds.email}/token:{creds.api_token}".encode()
    return {"authorization": "Basic " + b64encode(pair).decode("ascii")}




async def create_ticket(ctx: CallContext, creds: ZendeskCredentials, args: CreateTicketArgs) -> dict[str, Any]:
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
        raise upstream_error_from_json(CONNECTOR, response, "error")
    return json_body(CONNECTOR, response)


async def get_ticket(ctx: CallContext, creds: ZendeskCredentials, args: GetTicketArgs) -> dict[str, Any]:
    response = await send(ctx, CONNECTOR, "GET", f"{_base(ctx, creds)}/api/v2/tickets/{args.ticket_id}.json",
                          idempotent=True, headers=_auth(creds))
    if response.status_code >= 400:
        raise upstream_error_from_json(CONNECTOR, response, "error")
    return json_body(CONNECTOR, response)


TOOLS = (
    ToolSpec("zendesk.create_ticket", CONNECTOR, "Create a Zendesk support ticket.", CreateTicketArgs,
             ZendeskCredentials, idempotent=False, run=create_ticket),
    ToolSpec("zendesk.get_ticket", CONNECTOR, "Read one Zendesk ticket by id.", GetTicketArgs,
             ZendeskCredentials, idempotent=True, run=get_ticket),
)
