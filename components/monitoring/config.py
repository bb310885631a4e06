"""`cmp-platform:monitoring`: opt-in ServiceMonitors and PrometheusRules, and the thresholds the alerts use."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from infra.config import Model, Peer

_DURATION = re.compile(r"^\d+(ms|s|m|h)$")


class AlertThresholds(Model):
    """When an alert fires (docs/monitoring.md explains each)."""

    signature_failures_per_second: float = Field(default=0.05, ge=0)
    control_plane_failure_ratio: float = Field(default=0.1, gt=0, le=1)
    oldest_pending_seconds: int = Field(default=600, gt=0)
    # Catch-up reads Saleor every CATCHUP_INTERVAL_SECONDS (300 by default): a lag of several intervals means it
    # has stopped reading (Saleor unreachable, the app token missing or revoked).
    catchup_lag_seconds: int = Field(default=1800, gt=0)
    gateway_5xx_ratio: float = Field(default=0.05, gt=0, le=1)
    gateway_p99_seconds: float = Field(default=2.0, gt=0)


class MonitoringConfig(Model):
    """Off unless a stack turns it on: the cluster needs prometheus-operator (its CRDs) for these objects."""

    enabled: bool = False
    scrape_interval: str = "30s"
    # Labels a Prometheus selects ServiceMonitors and PrometheusRules by (e.g. {release: kube-prometheus-stack}).
    labels: dict[str, str] = Field(default_factory=dict)
    # The Prometheus pods, let through the services' NetworkPolicies to scrape /metrics.
    scraper: Peer = Field(default_factory=lambda: Peer(namespace="monitoring",
                                                       pod_labels={"app.kubernetes.io/name": "prometheus"}))
    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError("must be a Prometheus duration like 30s or 1m")
        return value



