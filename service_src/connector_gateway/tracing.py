"""The gateway's spans (service_src/common/tracing.py decides whether there are any).

One SERVER span per tool call, REST or MCP, named ``tools/call {tool}`` with the MCP and GenAI conventions:
``mcp.method.name``, ``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name``, ``mcp.session.id`` when
the client sent one, ``error.type`` for a failed call; the arguments and the result only with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``. Its parent is the caller's ``traceparent``. The calls
it makes are its children and carry its context on: the control plane and the SaaS APIs (aiohttp hooks), Vault
(``TracedAdapter``, hvac's adapter with a span and ``traceparent`` per request).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hvac.adapters import JSONAdapter
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from service_src.common.tracing import Tracing, extract, inject

MCP_SESSION_HEADER = "mcp-session-id"


def request_carrier(headers: list[tuple[bytes, bytes]] | None) -> dict[str, str]:
    """An ASGI request's headers as the text map the propagators read."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers or ()}


@contextmanager
def tool_call_span(tracing: Tracing, *, tool: str, transport: str, request_id: str,
                   carrier: dict[str, str], arguments: Any) -> Iterator[Span]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "mcp.method.name": "tools/call",
        "cmp.transport": transport,
        "cmp.request_id": request_id,
    }
    if transport == "mcp":
        attributes["jsonrpc.request.id"] = request_id
        if session := carrier.get(MCP_SESSION_HEADER):
            attributes["mcp.session.id"] = session
    else:
        attributes["http.request.method"] = "POST"
        attributes["http.route"] = "/v1/tools/{tool}:invoke"
    if tracing.capture_content and arguments is not None:
        attributes["gen_ai.tool.call.arguments"] = _json(arguments)
    with tracing.tracer.start_as_current_span(f"tools/call {tool}", context=extract(carrier), kind=SpanKind.SERVER,
                                              attributes=attributes, record_exception=False,
                                              set_status_on_exception=False) as span:
        yield span


def call_failed(span: Span, code: str, status: int) -> None:
    span.set_attribute("error.type", code)
    span.set_attribute("cmp.status", status)
    span.set_status(Status(StatusCode.ERROR, code))


def call_succeeded(tracing: Tracing, span: Span, result: Any) -> None:
    span.set_attribute("cmp.status", 200)
    if tracing.capture_content:
        span.set_attribute("gen_ai.tool.call.result", _json(result))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def traced_adapter(tracer: trace.Tracer) -> type[JSONAdapter]:
    """hvac's JSON adapter with a CLIENT span per Vault request and its ``traceparent`` sent along."""

    class TracedAdapter(JSONAdapter):
        def request(self, method, url, headers=None, raise_exception=True, **kwargs):
            with tracer.start_as_current_span(f"vault {method.upper()}", kind=SpanKind.CLIENT, attributes={
                    "http.request.method": method.upper(), "url.path": f"/v1/{url.lstrip('/')}"}) as span:
                response = super().request(method, url, headers=inject(dict(headers or {})),
                                           raise_exception=raise_exception, **kwargs)
                status = getattr(response, "status_code", 200)
                span.set_attribute("http.response.status_code", status)
                return response

    return TracedAdapter
