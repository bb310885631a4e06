"""Tracing is off unless the standard OTEL_* variables turn it on, and then follows them."""

from __future__ import annotations

import pytest

from service_src.common.tracing import configure, enabled_by


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_on_only_when_the_standard_variables_say_so(env, on):
    assert enabled_by(env) is on
    tracing = configure("svc", env)
    try:
        assert tracing.enabled is on
        assert bool(tracing.aiohttp_trace_configs()) is on
    finally:
        tracing.shutdown()


def test_the_service_name_is_the_services_unless_otel_service_name_says(monkeypatch):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    tracing = configure("cmp-svc", env)
    assert tracing.provider.resource.attributes["service.name"] == "cmp-svc"
    tracing.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed")
    tracing = configure("cmp-svc", {**env, "OTEL_SERVICE_NAME": "renamed"})
    assert tracing.provider.resource.attributes["service.name"] == "renamed"
    tracing.shutdown()
