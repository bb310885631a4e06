"""MCP over streamable HTTP at /mcp (mcp SDK 2.x, stateless, JSON responses, so any worker serves any call).

Each tool's inputSchema is the REST body shape ``{binding, arguments}``; the tool function hands the call to
the same ToolGateway.invoke as REST. A server middleware filters ``tools/list`` to the caller's allowlist and
refuses ``tools/call`` of a tool the caller may not use (through the gateway, so the refusal is audited).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp import UrlElicitationRequiredError
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, ElicitRequestURLParams, ListToolsResult, TextContent

from service_src.connector_gateway.auth import Caller
from service_src.connector_gateway.connectors import TOOLS, ToolSpec
from service_src.connector_gateway.errors import GatewayError, unauthorized
from service_src.connector_gateway.gateway import ToolCall, ToolGateway
from service_src.connector_gateway.rest import new_request_id
from service_src.connector_gateway.user_connections import ConnectionRequired

SERVER_NAME = "cmp-connector-gateway"


class GatewayTokenVerifier:
    """The SDK's TokenVerifier over the gateway's own caller check, for the /mcp audience.

    The app's front has already refused (and audited) any request this could refuse: one Authorization
    field, the same verifier, the same audience. So the SDK's layer never refuses on its own.
    """

    def __init__(self, gateway: ToolGateway) -> None:
        self._gateway = gateway
        self._resource = gateway.settings.resource_url

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            caller = await self._gateway.verifier.verify(token.strip(), self._resource)
        except GatewayError:
            return None
        claims = {"org": caller.org, "project": caller.project, "sub": caller.sub}
        # No expires_at: the verifier checked exp (with its leeway); the SDK would check it again without one.
        return AccessToken(token=token, client_id=caller.sub, scopes=[], subject=caller.sub, claims=claims,
                           resource=self._resource)


def current_caller() -> Caller:
    token = get_access_token()
    claims = token.claims if token is not None else None
    if not claims:
        raise unauthorized("no verified caller on this MCP request")
    return Caller(org=claims["org"], project=claims["project"], sub=claims["sub"])


def connect_elicitation(exc: ConnectionRequired, request_id: str) -> UrlElicitationRequiredError:
    """The MCP URL-elicitation error (-32042): the client shows the user the connect page, then calls again."""
    return UrlElicitationRequiredError([ElicitRequestURLParams(
        message=exc.message, url=exc.connect_url, elicitation_id=f"connect-{exc.binding}-{request_id}")],
        message=exc.message)


def _error_result(exc: GatewayError) -> CallToolResult:
    text = f"{exc.status} {exc.code}: {exc.message}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content={"status": exc.status, "error": exc.code, "message": exc.message},
        is_error=True,
    )


async def run_tool(gateway: ToolGateway, tool: str, binding: Any, arguments: Any, request_id: str | None,
                   headers: Mapping[str, str] | None = None) -> CallToolResult:
    call = ToolCall(
        request_id=request_id or new_request_id(),
        transport="mcp",
        tool=tool,
        binding=binding,
        arguments=arguments,
        trace_carrier=dict(headers) if headers is not None and gateway.tracing.enabled else None,
    )
    try:
        call.caller = current_caller()
        result = await gateway.invoke(call)
    except ConnectionRequired as exc:
        raise connect_elicitation(exc, call.request_id) from None
    except GatewayError as exc:
        return _error_result(exc)
    return CallToolResult(
        content=[TextContent(type="text", text=_dumps(result))], structured_content=result, is_error=False
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class PolicyMiddleware:
    """Filters tools/list per caller; refuses tools/call of tools outside the caller's allowlist."""

    def __init__(self, gateway: ToolGateway) -> None:
        self._gateway = gateway

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/list":
            result = await call_next(ctx)
            try:
                allowed = await self._gateway.allowed_tools(current_caller())
            except GatewayError:
                allowed = frozenset()  # fail closed: list nothing
            if isinstance(result, ListToolsResult):
                return result.model_copy(update={"tools": [t for t in result.tools if t.name in allowed]})
            if isinstance(result, dict) and isinstance(result.get("tools"), list):  # the modern, per-request path
                return {**result, "tools": [t for t in result["tools"] if t.get("name") in allowed]}
            return result
        if ctx.method == "tools/call":
            params = ctx.params or {}
            name = params.get("name")
            try:
                allowed = await self._gateway.allowed_tools(current_caller())
            except GatewayError:
                allowed = frozenset()
            if name not in allowed:
                args = params.get("arguments")
                args = args if isinstance(args, dict) else {}
                rid = str(ctx.request_id) if ctx.request_id is not None else None
                return await run_tool(self._gateway, str(name), args.get("binding"), args.get("arguments"), rid,
                                      getattr(ctx.request, "headers", None))
        return await call_next(ctx)


def _tool(gateway: ToolGateway, spec: ToolSpec) -> Tool:
    async def call(ctx: Context, binding: Any = None, arguments: Any = None) -> CallToolResult:
        return await run_tool(gateway, spec.name, binding, arguments, ctx.request_id, ctx.headers)

    # The SDK derives a loose schema from the signature (so the gateway, not the SDK, validates and audits);
    # advertise the real one.
    tool = Tool.from_function(call, name=spec.name, description=spec.description)
    return tool.model_copy(update={"parameters": spec.input_schema()})


def build_mcp_server(gateway: ToolGateway) -> MCPServer:
    """An RFC 9728 protected resource: its metadata names the control plane's authorization server, and tokens
    must carry the canonical /mcp URI as audience (RFC 8707)."""
    settings = gateway.settings
    return MCPServer(
        SERVER_NAME,
        token_verifier=GatewayTokenVerifier(gateway),
        auth=AuthSettings(issuer_url=settings.authorization_server, resource_server_url=settings.resource_url,
                          validate_token_resource=False),  # the verifier checks the audience itself
        middleware=[PolicyMiddleware(gateway)],
        tools=[_tool(gateway, spec) for spec in TOOLS.values()],
        log_level="WARNING",
    )


def mcp_asgi_app(server: MCPServer, max_body_bytes: int):
    """The SDK's Starlette app serving /mcp and its protected resource metadata. The SDK's DNS-rebinding guard
    (Host and Origin, on localhost only) is off: the app's front checks Origin on every address instead."""
    return server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=True,
        stateless_http=True,
        max_request_body_size=max_body_bytes,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
