"""The provisioner's spans (service_src/common/tracing.py decides whether there are any).

A delivery is one trace however long it waits: a SERVER span ``deliver {event}`` when Saleor's webhook arrives
(continuing a ``traceparent`` the request carries), whose context is saved with the inbox row; a span
``work {event}`` per attempt of the worker, a child of that saved context, even on another replica or hours
later; and under it the control-plane call (the HTTP session's client span, its ``traceparent`` sent on).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from service_src.common.tracing import Tracing, extract, inject

TRACEPARENT = "traceparent"


@contextmanager
def delivery_span(tracing: Tracing, event: str, headers: Mapping[str, str]) -> Iterator[Span]:
    with tracing.tracer.start_as_current_span(
            f"deliver {event}", context=extract(dict(headers)), kind=SpanKind.SERVER,
            attributes={"cmp.saleor_event": event, "http.request.method": "POST"}) as span:
        yield span


def saved_context() -> str | None:
    """The current span's ``traceparent``, to store with the inbox row (None while tracing is off)."""
    return inject({}).get(TRACEPARENT)


@contextmanager
def work_span(tracing: Tracing, event: str, order_id: str, attempt: int, traceparent: str | None) -> Iterator[Span]:
    carrier = {TRACEPARENT: traceparent} if traceparent else None
    with tracing.tracer.start_as_current_span(
            f"work {event}", context=extract(carrier), kind=SpanKind.CONSUMER,
            attributes={"cmp.saleor_event": event, "cmp.order_id": order_id, "cmp.attempt": attempt}) as span:
        yield span


def outcome(span: Span, status: str, error: str | None) -> None:
    span.set_attribute("cmp.outcome", status)
    if error:
        span.set_status(Status(StatusCode.ERROR, error[:200]))
