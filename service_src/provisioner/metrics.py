"""Prometheus metrics, one registry per app so tests can build several apps in one process."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

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


class _CatchUpLagCollector:
    """Seconds between now and the catch-up cursor, read from the database at scrape time, so the lag keeps
    growing while no replica completes a read; +Inf until a first read has completed (catch-up off, its token
    refused, Saleor unreachable since the database was made), so the lag alert covers those too."""

    def __init__(self, read_until: Callable[[], datetime | None]) -> None:
        self._read_until = read_until

    def collect(self):
        try:
            read_until = self._read_until()
        except Exception:  # a scrape must not fail because the database blinked
            return
        lag = math.inf if read_until is None else max((_utcnow() - read_until).total_seconds(), 0.0)
        yield GaugeMetricFamily("cmp_provisioner_catchup_lag_seconds",
                                "Seconds since the point up to which catch-up has read Saleor's orders", lag)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as the database keeps it


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
        self.catchup_orders = Counter(
            "cmp_provisioner_catchup_orders",
            "Order events catch-up found in Saleor, by event and outcome (missed: no webhook had delivered it, so "
            "catch-up put it into the inbox; seen: already in the inbox)",
            ["event", "outcome"],
            registry=self.registry,
        )
        for event in ("ORDER_FULLY_PAID", "ORDER_CANCELLED"):  # present from the start: increase() sees the first
            for outcome in ("missed", "seen"):
                self.catchup_orders.labels(event, outcome)
        self.catchup_runs = Counter(
            "cmp_provisioner_catchup_runs",
            "Catch-up reads of Saleor by outcome (ok, refused, saleor_error, database_error)",
            ["outcome"],
            registry=self.registry,
        )

    def watch_catchup_cursor(self, read_until: Callable[[], datetime | None]) -> None:
        self.registry.register(_CatchUpLagCollector(read_until))
