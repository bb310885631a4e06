"""Prometheus metrics per tool and decision (calls, errors, duration), caller JWKS fetches, and the shared rate
limit's storage errors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "cmp_connector_tool_calls", "Tool calls by tool, decision and HTTP status.",
            ["tool", "decision", "status"], registry=self.registry,
        )
        self.errors = Counter(
            "cmp_connector_tool_errors", "Tool calls that failed, by tool and error code.",
            ["tool", "error"], registry=self.registry,
        )
        self.duration = Histogram(
            "cmp_connector_tool_call_duration_seconds", "Tool call latency inside the gateway.",
            ["tool", "decision"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.jwks_fetches = Counter(
            "cmp_connector_caller_jwks_fetches", "Fetches of the caller JWKS, by result (ok or error).",
            ["result"], registry=self.registry,
        )
        self.rate_limit_storage_errors = Counter(
            "cmp_connector_rate_limit_storage_errors", "Rate-limit checks the shared storage (Redis) did not answer.",
            registry=self.registry,
        )

    def observe(self, tool: str | None, decision: str, status: int, seconds: float, error: str | None) -> None:
        label = tool or "-"
        self.calls.labels(label, decision, str(status)).inc()
        self.duration.labels(label, decision).observe(seconds)
        if error is not None:
            self.errors.labels(label, error).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
