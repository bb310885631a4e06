"""A delivery is one trace from Saleor's webhook through the inbox and the worker to the control-plane call, read
with the SDK's in-memory exporter, and its context survives the inbox (a later attempt continues it)."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from service_src.common.tracing import in_memory
from tests.services.provisioner.helpers import body_of, inbox_rows, order_payload, wait_until

PAID = "order-fully-paid"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def _hex(span) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def test_a_delivery_is_one_trace_through_inbox_worker_and_control_plane(provisioner_factory, control_plane):
    exporter = InMemorySpanExporter()
    provisioner = provisioner_factory(tracing=in_memory("cmp-provisioner", exporter, env={}))
    order_id = "T3JkZXI6dHJhY2U="
    r = provisioner.deliver(PAID, body_of(order_payload(order_id)), extra_headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200, r.text
    wait_until(lambda: any(s.name == "work ORDER_FULLY_PAID" for s in exporter.get_finished_spans()),
               what="the worker's span")
    spans = exporter.get_finished_spans()
    (deliver,) = [s for s in spans if s.name == "deliver ORDER_FULLY_PAID"]
    (work,) = [s for s in spans if s.name == "work ORDER_FULLY_PAID"]
    assert deliver.kind is SpanKind.SERVER and _hex(deliver)[0] == TRACE_ID
    assert f"{deliver.parent.span_id:016x}" == "b7ad6b7169203331"
    # The inbox row holds the delivery's context; the worker's span continues it.
    (row,) = inbox_rows(provisioner.store)
    assert row.traceparent == f"00-{TRACE_ID}-{_hex(deliver)[1]}-01"
    assert work.parent.span_id == deliver.context.span_id and _hex(work)[0] == TRACE_ID
    assert work.attributes["cmp.outcome"] == "done" and work.attributes["cmp.order_id"] == order_id
    # The control-plane call: a client span under the work span, and the control plane received its context.
    (call,) = control_plane.calls_to("POST", "/instances")
    _, trace_id, parent, _ = call.traceparent.split("-")
    (client,) = [s for s in spans if _hex(s)[1] == parent]
    assert trace_id == TRACE_ID and client.kind is SpanKind.CLIENT
    assert client.parent.span_id == work.context.span_id


def test_untraced_the_inbox_keeps_no_context_and_nothing_is_sent_on(provisioner_factory, control_plane, monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    provisioner = provisioner_factory()
    r = provisioner.deliver(PAID, body_of(order_payload("T3JkZXI6bm8=")), extra_headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200
    wait_until(lambda: control_plane.calls_to("POST", "/instances"), what="the control-plane call")
    assert inbox_rows(provisioner.store)[0].traceparent is None
    assert control_plane.calls_to("POST", "/instances")[0].traceparent is None
