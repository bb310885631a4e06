"""Prometheus metrics, one registry per app so tests can build several apps in one process."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily


class _InboxCollector:
    """Row counts by status, read from the database at scrape time (every replica sees the same table)."""

    def __init__(self, counts: Callable[[], dict[str, int]],
                 oldest_pending: Callable[[], float] | None = None) -> None:
        self._counts = counts
        self._oldest_pending = oldest_pending

    def collect(self):
        family = GaugeMetricFamily("cmp_provisioner_inbox_rows", "Inbox rows by status", labels=["status"])
        try:
            for status, count in self._counts().items():
                family.add_metric([status], count)
            oldest = self._oldest_pending() if self._oldest_pending is not None else None
        except Exception:  # a scrape must not fail because the database blinked
            return
        yield family
        if oldest is not None:
            yield GaugeMetricFamily("cmp_provisioner_inbox_oldest_pending_seconds",
                                    "Seconds the oldest pending inbox row has waited since it was received", oldest)


class Metrics:
    def __init__(self, inbox_counts: Callable[[], dict[str, int]] | None = None,
                 oldest_pending: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "cmp_provisioner_deliveries",
            "Webhook deliveries by event and outcome (accepted, duplicate, rejected_*, too_large, unavailable)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.rows = Counter(
            "cmp_provisioner_worker_rows",
            "Inbox rows the worker finished an attempt on, by event and outcome (done, recorded, retry, dead)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.cp_calls = Counter(
            "cmp_provisioner_control_plane_calls",
            "Control-plane calls by call and outcome (ok, transient, permanent)",
            ["call", "outcome"],
            registry=self.registry,
        )
        self.delivery_to_cp = Histogram(
            "cmp_provisioner_delivery_to_control_plane_seconds",
            "From a delivery's commit to the inbox to the control plane's answer for it",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=self.registry,
        )
        if inbox_counts is not None:
            self.registry.register(_InboxCollector(inbox_counts, oldest_pending))
