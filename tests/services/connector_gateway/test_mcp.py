"""An MCP client from the `mcp` SDK lists and calls tools end to end over streamable HTTP, and finds its way to a
token through the gateway's protected resource metadata (the MCP authorization spec, RFC 9728 and RFC 8707)."""

from __future__ import annotations

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from tests.services.connector_gateway.mcp_helpers import mcp_auth, mcp_client


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
def test_mcp_without_valid_token_is_401_naming_the_resource_metadata_and_audited(gateway, headers):
    r = httpx.post(f"{gateway.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={**headers, "accept": "application/json, text/event-stream"})
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert f'resource_metadata="{gateway.url}/.well-known/oauth-protected-resource/mcp"' in challenge
    line = gateway.audit()[-1]
    assert (line["transport"], line["decision"], line["status"], line["org"]) == ("mcp", "deny", 401, None)


def test_mcp_oversized_body_is_413_and_audited(start_gateway):
    gw = start_gateway(max_body_bytes=1024)
    arguments = {"binding": "zd", "arguments": {"body": "x" * 4000}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "zendesk.create_ticket", "arguments": arguments}}
    r = gw.http.post("/mcp", json=body, headers={**mcp_auth(gw), "accept": "application/json, text/event-stream"})
    assert r.status_code == 413 and "MAX_BODY_BYTES=1024" in r.json()["message"]
    line = gw.audit()[-1]
    assert (line["transport"], line["org"], line["decision"], line["status"]) == ("mcp", "acme", "deny", 413)


def test_protected_resource_metadata_names_the_control_planes_authorization_server(gateway, policies):
    r = gateway.http.get("/.well-known/oauth-protected-resource/mcp")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["resource"] == gateway.settings.resource_url == f"{gateway.url}/mcp"
    assert doc["authorization_servers"] == [policies.url]
    assert doc["bearer_methods_supported"] == ["header"]


class MemoryTokens:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


async def test_the_sdk_client_discovers_the_authorization_server_and_gets_a_token_for_this_resource(
        gateway, policies, saas):
    """No token configured: the SDK's OAuth client follows the 401's resource_metadata to the metadata, then to
    the control plane's token endpoint (client credentials, RFC 8707 resource), and calls the tool."""
    policies.caller_keys.add_client("runtime-globex", "s3cret-globex", org="globex", project="support")
    storage = MemoryTokens()
    oauth = ClientCredentialsOAuthProvider(server_url=f"{gateway.url}/mcp", storage=storage,
                                           client_id="runtime-globex", client_secret="s3cret-globex",
                                           issuer=policies.url)
    async with httpx2.AsyncClient(auth=oauth, timeout=10) as http, \
            Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http)) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert [t.name for t in tools] == ["zendesk.get_ticket"]
    assert not result.is_error, result.content
    token = storage.tokens.access_token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["aud"], claims["org"], claims["iss"]) == (f"{gateway.url}/mcp", "globex", policies.url)
    assert [c.status for c in policies.calls_to("POST", "/oauth/token")] == [200]
    statuses = [(a["transport"], a["status"]) for a in gateway.audit()]
    assert statuses[0] == ("mcp", 401) and statuses[-1] == ("mcp", 200)
    # The caller's token never travels upstream: the SaaS saw only the tenant's Zendesk credentials.
    assert all(token not in (c.authorization or "") for c in saas.calls)
    assert saas.calls_to("zendesk")[0].authorization.startswith("Basic ")


@pytest.mark.parametrize(("origin", "status"), [
    ("https://evil.example", 403), ("http://127.0.0.1:1", 403), ("https://app.example.com", 200), (None, 200)])
def test_an_origin_that_is_present_and_not_allowed_is_403_and_audited(start_gateway, origin, status):
    gw = start_gateway(mcp_allowed_origins="https://app.example.com")
    headers = {**mcp_auth(gw), "accept": "application/json, text/event-stream"}
    if origin is not None:
        headers["origin"] = origin
    r = gw.http.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                                                    "params": {}})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"] == "origin_not_allowed" and "MCP_ALLOWED_ORIGINS" in r.json()["message"]
        line = gw.audit()[-1]
        assert (line["transport"], line["decision"], line["status"], line["error"]) == (
            "mcp", "deny", 403, "origin_not_allowed")


def test_a_refusal_by_the_mcp_transport_itself_is_audited(gateway):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    r = gateway.http.post("/mcp", json=body, headers={**mcp_auth(gateway), "accept": "text/html"})
    assert r.status_code == 406, r.text
    line = gateway.audit()[-1]
    assert (line["transport"], line["org"], line["decision"], line["status"], line["error"]) == (
        "mcp", "acme", "deny", 406, "mcp_transport_refused")
