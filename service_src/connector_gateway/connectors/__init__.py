"""The tool registry: every tool the gateway can run, by its policy name ``<connector>.<action>``."""

from __future__ import annotations

from service_src.connector_gateway.connectors import hubspot, slack, zendesk
from service_src.connector_gateway.connectors.base import CallContext, ToolSpec
from service_src.connector_gateway.connectors.oauth import OAuthApp, UserAuth

TOOLS: dict[str, ToolSpec] = {spec.name: spec for module in (zendesk, slack, hubspot) for spec in module.TOOLS}
CONNECTORS: tuple[str, ...] = ("zendesk", "slack", "hubspot")
# The tools whose results may be cut between items (result_limits.py); every other result is refused if too large.
PAGERS = hubspot.PAGERS
# Per-user connections (user_connections.py), by connector.
USER_AUTH: dict[str, UserAuth] = {
    "zendesk": UserAuth(zendesk.ZendeskUserCredentials, zendesk.ZendeskOAuthApp, zendesk.refresh, ("subdomain",)),
    "slack": UserAuth(slack.SlackUserCredentials, OAuthApp, slack.refresh),
    "hubspot": UserAuth(hubspot.HubSpotCredentials, OAuthApp, hubspot.refresh),
}

__all__ = ["CONNECTORS", "PAGERS", "TOOLS", "USER_AUTH", "CallContext", "ToolSpec", "UserAuth"]
