"""The worker's concurrency: rows of one batch settle each on its own; batches overlap, within their bound."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from service_src.common.http import HttpSession
from service_src.provisioner.control_plane import ControlPlaneClient
from service_src.provisioner.inbox import DONE, PENDING
from service_src.provisioner.metrics import Metrics
from service_src.provisioner.worker import Worker
from tests.services.provisioner.helpers import (
    SERVICE_JWT_SECRET,
    body_of,
    inbox_rows,
    make_settings,
    order_payload,
    wait_until,
)

PAID = "order-fully-paid"


def receive_only(provisioner_factory, orders: list[str], **settings):
    """A running provisioner whose own worker is off, holding ``orders`` as pending paid deliveries."""
    provisioner = provisioner_factory(worker_enabled=False, **settings)
    for order_id in orders:
        assert provisioner.deliver(PAID, body_of(order_payload(order_id))).status_code == 200
    return provisioner


async def settled(provisioner, *, timeout: float) -> None:
    """Wait (without blocking the loop the worker runs on) until no row is pending."""
    deadline = time.monotonic() + timeout
    while any(r.status == PENDING for r in inbox_rows(provisioner.store)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


class CountingClient(ControlPlaneClient):
    """The real client, counting how many create_instance calls are in flight at once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.now = 0
        self.most = 0

    async def create_instance(self, body, *, order_id):
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            return await super().create_instance(body, order_id=order_id)
        finally:
            self.now -= 1


async def test_a_batch_with_some_transient_failures_settles_each_row_on_its_own(
    provisioner_factory, control_plane, pg_url
):
    orders = [f"T3JkZXI6YmF0Y2{i:02d}" for i in range(10)]
    provisioner = receive_only(provisioner_factory, orders)
    settings = make_settings(pg_url, control_plane.url, worker_batch_size=10)
    client = ControlPlaneClient(control_plane.url, SERVICE_JWT_SECRET, http=HttpSession(timeout_seconds=2))
    worker = Worker(settings, provisioner.store, client, Metrics())
    control_plane.fail_next(3, status=503)
    try:
        assert await worker.run_once() == 10  # one batch: all ten rows, their calls concurrent

        rows = inbox_rows(provisioner.store)
        assert Counter(r.status for r in rows) == Counter({DONE: 7, PENDING: 3})
        for row in rows:
            if row.status == PENDING:  # the failed ones: one attempt counted, retried later, nothing made
                assert row.attempts == 1 and "503" in row.last_error and row.lease_token is None
                assert control_plane.instances_for_order(row.order_id) == []
            else:
                [instance] = control_plane.instances_for_order(row.order_id)
                assert row.result == {"instances": {"ov_100:pro": instance.instance_id}}

        deadline = time.monotonic() + 10
        while Counter(r.status for r in inbox_rows(provisioner.store))[PENDING] and time.monotonic() < deadline:
            await worker.run_once()
            await asyncio.sleep(0.05)
    finally:
        await client.http.aclose()
    assert Counter(r.status for r in inbox_rows(provisioner.store)) == Counter({DONE: 10})
    for order_id in orders:
        assert len(control_plane.instances_for_order(order_id)) == 1, order_id
    ok = [c for c in control_plane.calls_to("POST", "/instances") if c.status in (200, 201)]
    assert len(ok) == 10


async def test_batches_overlap_up_to_the_in_flight_bound_and_no_row_is_worked_twice(
    provisioner_factory, control_plane, pg_url
):
    orders = [f"T3JkZXI6b3ZlcmxhcA{i:02d}" for i in range(24)]
    provisioner = receive_only(provisioner_factory, orders)
    settings = make_settings(pg_url, control_plane.url, worker_batch_size=2, worker_batches_in_flight=3)
    control_plane.delay_seconds = 0.15  # calls outlast a claim, so a second batch is claimed meanwhile
    client = CountingClient(control_plane.url, SERVICE_JWT_SECRET, http=HttpSession(timeout_seconds=2))
    worker = Worker(settings, provisioner.store, client, Metrics())
    task = asyncio.create_task(worker.run())
    try:
        await settled(provisioner, timeout=20)
    finally:
        worker.stop()
        await task
        await client.http.aclose()
    assert Counter(r.status for r in inbox_rows(provisioner.store)) == Counter({DONE: 24})
    assert 2 < client.most <= 6  # batches of 2 overlapped, never more than 3 of them at once
    calls = control_plane.calls_to("POST", "/instances")
    assert len(calls) == 24 and Counter(c.body["order_id"] for c in calls) == Counter(orders)


def test_the_service_worker_keeps_up_with_a_burst_and_wakes_on_delivery(provisioner_factory, control_plane):
    """With the poll interval far longer than the test, only wake-on-commit and full-batch claims move rows."""
    provisioner = provisioner_factory(worker_poll_seconds=30, worker_batch_size=5, worker_batches_in_flight=2)
    orders = [f"T3JkZXI6YnVyc3{i:03d}" for i in range(40)]
    for order_id in orders:
        assert provisioner.deliver(PAID, body_of(order_payload(order_id))).status_code == 200
    wait_until(
        lambda: all(r.status == DONE for r in inbox_rows(provisioner.store)), timeout=15, what="the burst to settle"
    )
    assert sorted(c.body["order_id"] for c in control_plane.calls_to("POST", "/instances")) == sorted(orders)


async def test_deliveries_arriving_during_a_partial_batch_go_out_together_after_it(
    provisioner_factory, control_plane, pg_url
):
    provisioner = receive_only(provisioner_factory, ["T3JkZXI6Zmlyc3Q"])
    settings = make_settings(pg_url, control_plane.url, worker_batch_size=10, worker_batches_in_flight=8)
    control_plane.delay_seconds = 0.3
    client = CountingClient(control_plane.url, SERVICE_JWT_SECRET, http=HttpSession(timeout_seconds=2))
    worker = Worker(settings, provisioner.store, client, Metrics())
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 5
        while client.now == 0 and time.monotonic() < deadline:  # the first order's one-row batch is in flight
            await asyncio.sleep(0.01)
        later = [f"T3JkZXI6bGF0ZX{i}" for i in range(5)]
        for order_id in later:  # each commit wakes the worker, but the partial batch is still out
            await asyncio.to_thread(provisioner.deliver, PAID, body_of(order_payload(order_id)))
            worker.wake()
        await settled(provisioner, timeout=10)
    finally:
        worker.stop()
        await task
        await client.http.aclose()
    assert Counter(r.status for r in inbox_rows(provisioner.store)) == Counter({DONE: 6})
    assert client.most == 5  # the five later orders in one batch, none beside the first order's
