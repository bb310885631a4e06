"""An MCP client of the `mcp` SDK for a running gateway, with a caller token for its /mcp audience."""

from __future__ import annotations

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.services.connector_gateway.conftest import auth


def mcp_auth(gw, **token_kwargs) -> dict[str, str]:
    """A caller token for /mcp: its audience is the gateway's canonical /mcp URI."""
    return auth(audience=gw.settings.resource_url, **token_kwargs)


def mcp_client(gw, mode: str = "auto", headers: dict[str, str] | None = None, **token_kwargs) -> Client:
    http = httpx2.AsyncClient(headers={**mcp_auth(gw, **token_kwargs), **(headers or {})}, timeout=10)
    return Client(streamable_http_client(f"{gw.url}/mcp", http_client=http), mode=mode)
