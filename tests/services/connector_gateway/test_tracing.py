"""Traces, read with the SDK's in-memory exporter: one ``tools/call {tool}`` span per call with the MCP/GenAI
attributes, the caller's trace continued, and the same trace carried on to the control plane, Vault and the SaaS."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service_src.common.tracing import CAPTURE_CONTENT, in_memory
from tests.services.connector_gateway.conftest import auth
from tests.services.connector_gateway.mcp_helpers import mcp_client

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"
GET_TICKET = {"binding": "zd", "arguments": {"ticket_id": 1}}


def _parent_id(traceparent: str) -> str:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01"), traceparent
    return span_id


@pytest.fixture
def traced(start_gateway):
    exporter = InMemorySpanExporter()
    gw = start_gateway(tracing=in_memory("cmp-connector-gateway", exporter, env={}))
    gw.spans = exporter
    return gw


def test_one_trace_from_the_caller_through_the_gateway_to_the_control_plane_vault_and_saas(traced, policies, saas):
    r = traced.http.post("/v1/tools/zendesk.get_ticket:invoke", json=GET_TICKET,
                         headers={**auth(), "traceparent": TRACEPARENT})
    assert r.status_code == 200, r.text
    spans = {s.context.span_id: s for s in traced.spans.get_finished_spans()}
    (tool,) = [s for s in spans.values() if s.name == "tools/call zendesk.get_ticket"]
    assert tool.kind is SpanKind.SERVER
    assert f"{tool.context.trace_id:032x}" == TRACE_ID and f"{tool.parent.span_id:016x}" == CALLER_SPAN
    assert tool.attributes["mcp.method.name"] == "tools/call"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "zendesk.get_ticket"
    assert "gen_ai.tool.call.arguments" not in tool.attributes  # content only when opted in
    assert tool.resource.attributes["service.name"] == "cmp-connector-gateway"
    children = [s for s in spans.values() if s.parent is not None and s.parent.span_id == tool.context.span_id]
    assert {s.kind for s in children} == {SpanKind.CLIENT}
    assert all(f"{s.context.trace_id:032x}" == TRACE_ID for s in spans.values())
    # The control plane received the trace: its traceparent names the gateway's client span of that request.
    (policy_call,) = policies.calls_to("GET", "/connectors/policy")
    cp_span = spans[int(_parent_id(policy_call.traceparent), 16)]
    assert cp_span.parent.span_id == tool.context.span_id and cp_span.attributes["http.request.method"] == "GET"
    # Vault: a client span under the tool call; the SaaS call too, and the SaaS received its context.
    assert any(s.name == "vault GET" for s in children)
    (saas_call,) = saas.calls_to("zendesk")
    saas_span = spans[int(_parent_id(saas_call.traceparent), 16)]
    assert saas_span.parent.span_id == tool.context.span_id
    assert saas_span.attributes["http.response.status_code"] == 200


def test_a_refused_call_is_an_error_span_naming_the_error(traced, saas):
    r = traced.invoke("zendesk.create_ticket", {"binding": "zd", "arguments": {"subject": "s", "body": "b"}},
                      org="globex")  # not in globex's allowlist
    assert r.status_code == 403
    (tool,) = [s for s in traced.spans.get_finished_spans() if s.name.startswith("tools/call")]
    assert tool.status.status_code is StatusCode.ERROR
    assert (tool.attributes["error.type"], tool.attributes["cmp.status"]) == ("forbidden", 403)


async def test_an_mcp_call_carries_its_session_and_the_callers_trace(traced):
    headers = {"traceparent": TRACEPARENT, "mcp-session-id": "session-7"}
    async with mcp_client(traced, headers=headers) as client:
        result = await client.call_tool("zendesk.get_ticket", GET_TICKET)
    assert not result.is_error, result.content
    (tool,) = [s for s in traced.spans.get_finished_spans() if s.name == "tools/call zendesk.get_ticket"]
    assert tool.attributes["mcp.session.id"] == "session-7"
    assert tool.attributes["cmp.transport"] == "mcp" and tool.attributes["jsonrpc.request.id"]
    assert f"{tool.context.trace_id:032x}" == TRACE_ID and f"{tool.parent.span_id:016x}" == CALLER_SPAN


def test_arguments_and_result_only_when_opted_in(start_gateway):
    exporter = InMemorySpanExporter()
    gw = start_gateway(tracing=in_memory("cmp-connector-gateway", exporter, env={CAPTURE_CONTENT: "true"}))
    assert gw.invoke("zendesk.get_ticket", GET_TICKET).status_code == 200
    (tool,) = [s for s in exporter.get_finished_spans() if s.name == "tools/call zendesk.get_ticket"]
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"ticket_id":1}'
    assert '"subject":"Printer on fire"' in tool.attributes["gen_ai.tool.call.result"]


def test_without_otel_variables_nothing_is_traced_or_sent_on(start_gateway, policies, saas, monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    gateway = start_gateway()  # tracing as the (cleared) environment says
    r = gateway.http.post("/v1/tools/zendesk.get_ticket:invoke", json=GET_TICKET,
                          headers={**auth(), "traceparent": TRACEPARENT})
    assert r.status_code == 200
    assert not gateway.app.gateway.tracing.enabled
    assert saas.calls_to("zendesk")[0].traceparent is None
    assert policies.calls_to("GET", "/connectors/policy")[0].traceparent is None
