"""HubSpot CRM v3 contacts, with a private app access token, or a user's OAuth access token on a per-user
binding (Bearer either way).

OAuth as HubSpot documents it (developers.hubspot.com, "OAuth tokens", ``POST /oauth/v1/token``): access tokens
live ``expires_in`` seconds (30 minutes); a call with an expired one answers 401 with ``category``
``EXPIRED_AUTHENTICATION``; ``grant_type=refresh_token`` with ``client_id``, ``client_secret`` and
``refresh_token`` as form fields answers a new access token, and the refresh token stays the same. A refused
refresh is HTTP 400 with ``status: BAD_REFRESH_TOKEN``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

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
from service_src.connector_gateway.connectors.oauth import OAuthApp, RefreshedTokens, TokenExpired, post_form, refreshed
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.result_limits import Pager

CONNECTOR = "hubspot"
Text = Annotated[str, StringConstraints(min_length=1, max_length=255)]
CONTACT_PROPERTIES = ("email", "firstname", "lastname", "phone", "company")


class HubSpotCredentials(Credentials):
    """A private app's token, or (per-user binding) the user's OAuth access token: both are Bearer tokens."""

    access_token: Annotated[str, StringConstraints(min_length=1)]

    def authorization(self) -> str:
        return f"Bearer {self.access_token}"


class CreateContactArgs(ToolArguments):
    email: Email
    firstname: Text | None = None
    lastname: Text | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^[0-9+() .-]{3,32}$")] | None = None
    company: Text | None = None


class SearchContactsArgs(ToolArguments):
    query: Text | None = None
    email: Email | None = None
    limit: int = Field(10, ge=1, le=100)
    after: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")] | None = None

    @model_validator(mode="after")
    def _one_criterion(self) -> SearchContactsArgs:
        if self.query is None and self.email is None:
            raise ValueError("give 'query' or 'email'")
        return self


def _headers(creds: HubSpotCredentials) -> dict[str, str]:
    return {"authorization": creds.authorization()}


def _refused(response: UpstreamResponse) -> GatewayError:
    error = upstream_error_from_json(CONNECTOR, response, "category")
    if response.status_code == 401 and error.message.endswith(": EXPIRED_AUTHENTICATION"):
        return TokenExpired(CONNECTOR, "EXPIRED_AUTHENTICATION")
    return error


async def refresh(ctx: CallContext, app: OAuthApp, refresh_token: str) -> RefreshedTokens:
    """``POST /oauth/v1/token`` with ``grant_type=refresh_token`` and the client's id and secret as form fields."""
    response = await post_form(ctx, CONNECTOR, f"{ctx.base_url}/oauth/v1/token", {
        "grant_type": "refresh_token", "client_id": app.client_id, "client_secret": app.client_secret,
        "refresh_token": refresh_token})
    return refreshed(CONNECTOR, response, "status")


async def create_contact(ctx: CallContext, creds: HubSpotCredentials, args: CreateContactArgs) -> dict[str, Any]:
    properties = args.model_dump(exclude_none=True)
    response = await send(ctx, CONNECTOR, "POST", f"{ctx.base_url}/crm/v3/objects/contacts", idempotent=False,
                          payload={"properties": properties}, headers=_headers(creds))
    if response.status_code >= 400:
        raise _refused(response)
    return json_body(CONNECTOR, response)


async def search_contacts(ctx: CallContext, creds: HubSpotCredentials, args: SearchContactsArgs) -> dict[str, Any]:
    payload: dict[str, Any] = {"properties": list(CONTACT_PROPERTIES), "limit": args.limit}
    if args.query is not None:
        payload["query"] = args.query
    if args.email is not None:
        payload["filterGroups"] = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": args.email}]}]
    if args.after is not None:
        payload["after"] = args.after
    # A search is a POST but reads only, so it is safe to retry.
    response = await send(ctx, CONNECTOR, "POST", f"{ctx.base_url}/crm/v3/objects/contacts/search",
                          idempotent=True, payload=payload, headers=_headers(creds))
    if response.status_code >= 400:
        raise _refused(response)
    return json_body(CONNECTOR, response)


def _read_on(args: SearchContactsArgs, kept: int) -> dict[str, Any]:
    """The search's arguments from the first result not returned: HubSpot's search ``after`` is that offset."""
    return {**args.model_dump(exclude_none=True), "after": str(int(args.after or 0) + kept)}


# A search result can be cut between contacts and read on from there; the other tools' results cannot.
PAGERS = {"hubspot.search_contacts": Pager("results", _read_on)}

TOOLS = (
    ToolSpec("hubspot.create_contact", CONNECTOR, "Create a HubSpot CRM contact.", CreateContactArgs,
             HubSpotCredentials, idempotent=False, run=create_contact),
    ToolSpec("hubspot.search_contacts", CONNECTOR, "Search HubSpot CRM contacts by text or email.",
             SearchContactsArgs, HubSpotCredentials, idempotent=True, run=search_contacts),
)
