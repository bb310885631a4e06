"""An MCP client from the `mcp` SDK lists and calls tools end to end over streamable HTTP."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.services.connector_gateway.conftest import auth


def mcp_client(gw, mode: str = "auto", **token_kwargs) -> Client:
    http = httpx2.AsyncClient(headers=auth(**token_kwargs), timeout=10)
    return Client(streamable_http_client(f"{gw.url}/mcp", http_client=http), mode=mode)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_list_shows_only_the_callers_allowed_tools(gateway, mode):
    async with mcp_client(gateway, mode=mode) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
    assert names == ["hubspot.search_contacts", "slack.post_message", "zendesk.create_ticket", "zendesk.get_ticket"]
    async with mcp_client(gateway, mode=mode, org="globex") as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == ["zendesk.get_ticket"]
    schema = tools[0].input_schema
    assert schema["required"] == ["binding", "arguments"]
    assert "ticket_id" in schema["properties"]["arguments"]["properties"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_call_runs_through_the_gateway(gateway, saas, mode):
    async with mcp_client(gateway, mode=mode) as client:
        result = await client.call_tool("zendesk.create_ticket",
                                        {"binding": "zd", "arguments": {"subject": "From MCP", "body": "hello"}})
    assert not result.is_error, result.content
    assert result.structured_content["ticket"]["subject"] == "From MCP"
    assert saas.calls_to("zendesk")[0].body["ticket"]["subject"] == "From MCP"
    line = gateway.audit()[-1]
    assert (line["transport"], line["tool"], line["decision"], line["status"]) == (
        "mcp", "zendesk.create_ticket", "allow", 200)


async def test_tools_call_refused_for_tool_outside_policy_and_audited(gateway, saas):
    async with mcp_client(gateway, org="globex") as client:
        result = await client.call_tool("zendesk.create_ticket",
                                        {"binding": "zd", "arguments": {"subject": "x", "body": "y"}})
        bad = await client.call_tool("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": "abc"}})
    assert result.is_error and result.structured_content["status"] == 403
    assert bad.is_error and bad.structured_content["status"] == 400
    assert "arguments.ticket_id" in bad.structured_content["message"]
    assert saas.calls == []
    denied = [(a["tool"], a["decision"], a["status"]) for a in gateway.audit()]
    assert ("zendesk.create_ticket", "deny", 403) in denied and ("zendesk.get_ticket", "deny", 400) in denied


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer not-a-jwt"}])
def test_mcp_without_valid_token_is_401_and_audited(gateway, headers):
    r = httpx.post(f"{gateway.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={**headers, "accept": "application/json, text/event-stream"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    line = gateway.audit()[-1]
    assert (line["transport"], line["decision"], line["status"], line["org"]) == ("mcp", "deny", 401, None)


def test_mcp_oversized_body_is_413_and_audited(start_gateway):
    gw = start_gateway(max_body_bytes=1024)
    arguments = {"binding": "zd", "arguments": {"body": "x" * 4000}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "zendesk.create_ticket", "arguments": arguments}}
    r = gw.http.post("/mcp", json=body, headers={**auth(), "accept": "application/json, text/event-stream"})
    assert r.status_code == 413 and "MAX_BODY_BYTES=1024" in r.json()["message"]
    line = gw.audit()[-1]
    assert (line["transport"], line["org"], line["decision"], line["status"]) == ("mcp", "acme", "deny", 413)
