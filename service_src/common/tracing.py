"""OpenTelemetry traces for both services, off unless the standard ``OTEL_*`` variables turn them on.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or
``OTEL_TRACES_EXPORTER=otlp``; off whatever else says so when ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none``. The SDK itself reads the rest: the sampler (``OTEL_TRACES_SAMPLER``, ``_ARG``),
the resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``; the service's own name otherwise), the
propagators (``OTEL_PROPAGATORS``, W3C trace context and baggage by default) and the OTLP/HTTP exporter's
endpoint, headers and timeout. Off, nothing is installed: no span is made and no header added.

A service holds its ``Tracing`` (never the process-global provider), so tests read spans with the SDK's
in-memory exporter (``in_memory``) through the same code paths production runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from types import SimpleNamespace

import aiohttp
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, Status, StatusCode

# The GenAI conventions' opt-in for recording a tool call's arguments and result on its span.
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def enabled_by(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or
                                      env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


@dataclass
class Tracing:
    """The service's tracer (a no-op one when off) and what it takes to trace the calls it makes."""

    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    provider: TracerProvider | None = None
    capture_content: bool = False

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def aiohttp_trace_configs(self) -> list[aiohttp.TraceConfig]:
        """For an aiohttp session: a client span per request, its context sent on as ``traceparent``."""
        return [client_trace_config(self.tracer)] if self.enabled else []

    def shutdown(self) -> None:
        """Export what is still buffered (at most the exporter's timeout)."""
        if self.provider is not None:
            self.provider.shutdown()


def _provider(service_name: str, env: Mapping[str, str], **kwargs) -> TracerProvider:
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    return TracerProvider(resource=Resource.create(attributes), **kwargs)


def configure(service_name: str, env: Mapping[str, str] = os.environ) -> Tracing:
    """The service's tracing as the environment asks (see the module docstring)."""
    if not enabled_by(env):
        return Tracing()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # only when on

    provider = _provider(service_name, env)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider.get_tracer(service_name), provider, _capture(env))


def in_memory(service_name: str, exporter: SpanExporter, env: Mapping[str, str] = os.environ) -> Tracing:
    """Every span, exported as it ends to ``exporter`` (the SDK's InMemorySpanExporter in tests)."""
    provider = _provider(service_name, env, sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider.get_tracer(service_name), provider, _capture(env))


def _capture(env: Mapping[str, str]) -> bool:
    return env.get(CAPTURE_CONTENT, "").strip().lower() == "true"


def extract(carrier: Mapping[str, str] | None) -> Context | None:
    """The caller's trace context (``traceparent``, ``tracestate``, baggage) from request headers."""
    return propagate.extract(carrier) if carrier else None


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current span's context to outgoing ``headers`` (nothing when no span is recording)."""
    propagate.inject(headers)
    return headers


def client_trace_config(tracer: trace.Tracer) -> aiohttp.TraceConfig:
    """aiohttp request hooks: a CLIENT span named after the method, ``traceparent`` from that span."""

    async def start(_session, ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
        url = params.url
        span = tracer.start_span(params.method, kind=SpanKind.CLIENT, attributes={
            "http.request.method": params.method, "server.address": url.host or "",
            "server.port": url.port or 0, "url.full": str(url.with_query(None))})
        ctx.span = span
        propagate.inject(params.headers, context=trace.set_span_in_context(span))

    async def end(_session, ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
        status = params.response.status
        ctx.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            ctx.span.set_status(Status(StatusCode.ERROR))
            ctx.span.set_attribute("error.type", str(status))
        ctx.span.end()

    async def failed(_session, ctx: SimpleNamespace, params: aiohttp.TraceRequestExceptionParams) -> None:
        ctx.span.set_status(Status(StatusCode.ERROR))
        ctx.span.set_attribute("error.type", type(params.exception).__name__)
        ctx.span.end()

    config = aiohttp.TraceConfig()
    config.on_request_start.append(start)
    config.on_request_end.append(end)
    config.on_request_exception.append(failed)
    return config
