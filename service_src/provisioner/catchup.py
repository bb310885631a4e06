"""Catch-up: ask Saleor for the paid and cancelled orders its webhooks may not have delivered.

Saleor retries a failed delivery five times over about five minutes, then marks it FAILED for good, and makes
no delivery at all for an event raised while the webhook or its app is inactive. So a provisioner that was down
longer than that, or a webhook that was off for a while, would lose paid orders. Catch-up reads Saleor's orders
changed since a cursor kept in PostgreSQL (minus ``CATCHUP_OVERLAP_SECONDS``), with the orders query of
components/saleor/graphql (``SALEOR_ORDERS_QUERY``, the webhooks' order shape) and the Saleor app's own token
(MANAGE_ORDERS). Each paid order becomes an ORDER_FULLY_PAID row and each cancelled one an ORDER_CANCELLED row
(plus its paid row when it had been paid), under the same (event, order id) key and with the same body shape as
a delivery: the inbox skips what a webhook already brought, and the worker's exactly-once path is the only way
to the control plane. A body the worker cannot use becomes a dead letter with the reason there, as a delivery's.

It runs at start and every ``CATCHUP_INTERVAL_SECONDS`` on whichever replica holds a PostgreSQL advisory lock
(the others skip that round), and once on demand (``cmp-provisioner catch-up --since``). Saleor's errors and
throttling are retried with backoff inside the background task; webhook intake never waits for it. The cursor
only moves after a read completed, to the time that read started.
"""

from __future__ import annotations

import asyncio
import json
import random
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog

from service_src.common.http import HttpSession

from .inbox import PENDING, InboxStore, NewDelivery, utcnow
from .metrics import Metrics
from .payloads import OrderEvent
from .settings import ProvisionerSettings

log = structlog.get_logger("cmp_provisioner.catchup")

CURSOR = "saleor-orders"
PAID_CHARGE_STATUSES = frozenset({"FULL", "OVERCHARGED"})  # Saleor fires ORDER_FULLY_PAID at these
CANCELED = "CANCELED"
# Fields the query adds to the webhooks' order shape, left out of the body the inbox keeps.
_QUERY_ONLY = ("updatedAt", "status", "chargeStatus")
# Top-level error codes with which Saleor refuses the token itself (revoked, the app inactive or deleted).
_REFUSED_CODES = frozenset({"PermissionDenied", "DecodeError", "InvalidTokenError", "ExpiredSignatureError",
                            "InvalidSignatureError"})
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_ATTEMPTS = 4  # per request; then the run fails and the loop backs off
_JITTER = random.Random()


class CatchUpError(Exception):
    """A read of Saleor failed; ``outcome`` is the metric label (refused, saleor_error)."""

    def __init__(self, message: str, outcome: str = "saleor_error") -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass
class RunResult:
    since: datetime
    read_until: datetime | None = None  # the cursor after the run; None when another replica held the lock
    orders: int = 0
    missed: dict[str, int] = field(default_factory=dict)  # event -> rows catch-up put into the inbox
    seen: dict[str, int] = field(default_factory=dict)  # event -> rows a webhook had already brought

    def line(self) -> str:
        if self.read_until is None:
            return "catch-up skipped: another replica holds the catch-up lock"
        missed, seen = sum(self.missed.values()), sum(self.seen.values())
        per_event = ", ".join(f"{e} {n}" for e, n in sorted(self.missed.items())) or "none"
        return (f"catch-up since {_iso(self.since)}: {self.orders} orders read, {missed} missed by the webhooks "
                f"(into the inbox: {per_event}), {seen} already received; cursor at {_iso(self.read_until)}")


def _iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def disabled_reason(settings: ProvisionerSettings) -> str | None:
    """Why catch-up cannot run with these settings, or None."""
    missing = [name for name, value in (("SALEOR_API_URL", settings.saleor_api_url),
                                        ("SALEOR_ORDERS_QUERY", settings.saleor_orders_query),
                                        ("SALEOR_APP_TOKEN", settings.saleor_app_token)) if not value]
    if not missing:
        return None
    return (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: orders are taken from "
            "webhooks only (docs/saleor.md, the app token)")


def order_events(node: dict[str, Any]) -> list[tuple[OrderEvent, bytes]]:
    """The inbox rows a read order stands for, each body in the shape a webhook delivers."""
    order = {k: v for k, v in node.items() if k not in _QUERY_ONLY}
    events = []
    if node.get("chargeStatus") in PAID_CHARGE_STATUSES:
        events.append(OrderEvent.ORDER_FULLY_PAID)
    if node.get("status") == CANCELED:
        events.append(OrderEvent.ORDER_CANCELLED)
    return [(e, json.dumps({"__typename": e.typename, "order": order}, separators=(",", ":")).encode())
            for e in events]


class SaleorOrders:
    """Pages of Saleor's orders changed since a time, read as the app (see the module docstring)."""

    def __init__(self, settings: ProvisionerSettings, http: HttpSession) -> None:
        assert settings.saleor_api_url and settings.saleor_orders_query and settings.saleor_app_token
        self._url = settings.saleor_api_url
        self._query = settings.saleor_orders_query
        self._token = settings.saleor_app_token
        self._page_size = settings.catchup_page_size
        self._timeout = aiohttp.ClientTimeout(total=settings.saleor_timeout_seconds)
        self._backoff = settings.retry_backoff_seconds
        self._http = http

    async def pages(self, since: datetime):
        after = None
        while True:
            data = await self._post({"since": _iso(since), "first": self._page_size, "after": after})
            orders = data.get("orders") or {}
            yield [edge["node"] for edge in orders.get("edges") or []]
            info = orders.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                return
            after = info["endCursor"]

    async def _post(self, variables: dict[str, Any]) -> dict[str, Any]:
        """One query, retried on connection errors, timeouts, 429 and 5xx (Saleor's API limits and restarts)."""
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        body = {"query": self._query, "variables": variables}
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._http.get().post(self._url, json=body, headers=headers, timeout=self._timeout,
                                                  allow_redirects=False) as response:
                    status, text = response.status, await response.text()
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = f"Saleor at {self._url} unreachable ({type(exc).__name__})"
            else:
                if status not in _TRANSIENT_STATUSES:
                    return _data(status, text, self._url)
                problem = f"Saleor at {self._url} answered HTTP {status}"
            if attempt == _ATTEMPTS:
                raise CatchUpError(f"{problem} after {attempt} attempts")
            delay = self._backoff * 2 ** (attempt - 1)
            log.info("catchup_saleor_retry", reason=problem, attempt=attempt, delay_seconds=round(delay, 2))
            await asyncio.sleep(delay / 2 + _JITTER.uniform(0, delay / 2))
        raise AssertionError("unreachable")


def _data(status: int, text: str, url: str) -> dict[str, Any]:
    try:
        answer = json.loads(text)
    except ValueError:
        raise CatchUpError(f"Saleor at {url} answered HTTP {status} without GraphQL JSON") from None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        first = errors[0]
        code = ((first.get("extensions") or {}).get("exception") or {}).get("code") or ""
        message = " ".join(str(first.get("message", "")).split())[:200]
        if code in _REFUSED_CODES:
            raise CatchUpError(f"Saleor refused the app token ({code}: {message}); the app needs MANAGE_ORDERS "
                               "and a live token (docs/saleor.md, the app token)", outcome="refused")
        raise CatchUpError(f"Saleor answered {code or 'an error'}: {message}")
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("data"), dict):
        raise CatchUpError(f"Saleor at {url} answered HTTP {status} without data")
    return answer["data"]


class CatchUp:
    """The catch-up loop and single runs; ``status`` is what /readyz reports."""

    def __init__(self, settings: ProvisionerSettings, store: InboxStore, http: HttpSession, metrics: Metrics,
                 wake_worker=lambda: None) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._wake_worker = wake_worker
        self._stopping = asyncio.Event()
        self.off = disabled_reason(settings)
        self._orders = SaleorOrders(settings, http) if self.off is None else None
        self.status = f"off: {self.off}" if self.off else "starting"

    def stop(self) -> None:
        self._stopping.set()

    async def run_forever(self) -> None:
        """A run at start and then every interval; a failed run is tried again sooner, backing off up to it."""
        if self._orders is None:
            log.warning("catchup_off", reason=self.off)
            return
        interval, failures = self._settings.catchup_interval_seconds, 0
        while not self._stopping.is_set():
            try:
                result = await self.run_once()
                failures = 0
                if result.read_until is not None:
                    log.info("catchup_done", summary=result.line())
            except CatchUpError as exc:
                failures += 1
                self.status = f"{exc.outcome}: {exc}"
                self._metrics.catchup_runs.labels(exc.outcome).inc()
                log.warning("catchup_failed", outcome=exc.outcome, reason=str(exc), failures=failures)
            except Exception as exc:  # the database; the loop must outlive it
                failures += 1
                self.status = f"database_error: {type(exc).__name__}"
                self._metrics.catchup_runs.labels("database_error").inc()
                log.warning("catchup_failed", outcome="database_error", reason=type(exc).__name__)
            wait = interval if failures == 0 else min(interval, 5.0 * 2 ** (failures - 1))
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

    async def run_once(self, since: datetime | None = None) -> RunResult:
        """One read of Saleor under the advisory lock (skipped when another replica holds it). ``since`` (naive
        UTC) overrides the cursor for an operator's run; the cursor never moves back."""
        if self._orders is None:
            raise CatchUpError(f"catch-up is off: {self.off}", outcome="off")
        lock = await asyncio.to_thread(self._store.try_catchup_lock)
        if lock is None:
            self.status = "standby: another replica holds the catch-up lock (its /readyz says how it goes)"
            return RunResult(since=since or utcnow())
        try:
            return await self._read(since)
        finally:
            await asyncio.to_thread(self._store.release_catchup_lock, lock)

    async def _read(self, since: datetime | None) -> RunResult:
        s = self._settings
        started = utcnow()
        if since is None:
            cursor = await asyncio.to_thread(self._store.catchup_cursor, CURSOR)
            since = (cursor - timedelta(seconds=s.catchup_overlap_seconds) if cursor is not None
                     else started - timedelta(seconds=s.catchup_first_lookback_seconds))
        result = RunResult(since=since)
        async for nodes in self._orders.pages(since):
            result.orders += len(nodes)
            rows = [NewDelivery(event.value, str(node["id"]), body, PENDING)
                    for node in nodes if node.get("id") for event, body in order_events(node)]
            if not rows:
                continue
            new = await asyncio.to_thread(self._store.record_many, rows)
            for row, created in zip(rows, new, strict=True):
                tally = result.missed if created else result.seen
                tally[row.event] = tally.get(row.event, 0) + 1
                self._metrics.catchup_orders.labels(row.event, "missed" if created else "seen").inc()
                if created:
                    log.warning("catchup_missed_order", saleor_event=row.event, order_id=row.order_id)
            if any(new):
                self._wake_worker()
        result.read_until = await asyncio.to_thread(self._store.advance_catchup_cursor, CURSOR, started)
        self._metrics.catchup_runs.labels("ok").inc()
        self.status = f"ok: read Saleor's orders up to {_iso(result.read_until)}"
        return result
