"""Catch-up against a Saleor that fails like Saleor (tests/components/saleor/fake_saleor_events.py): with the
provisioner down past Saleor's whole retry schedule, every paid order still reaches the control plane exactly
once, the cancelled one is cancelled exactly once, and nothing happens twice, with two replicas catching up at
once on one PostgreSQL."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from components.saleor.documents import ORDER_EVENTS, document
from service_src.provisioner.app import create_app
from service_src.provisioner.cli import main as cli_main
from service_src.provisioner.inbox import DEAD, DONE, PENDING
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.services.provisioner.helpers import SERVICE_JWT_SECRET, cli, inbox_rows, line, make_settings, wait_until
from tests.support.cli import assert_one_line_usage_error
from tests.support.net import free_port, run_uvicorn_in_thread
from tests.support.tiers import server_fixture
from tests.tools.verify.helpers import deploy_app

SCALE = 0.001  # Saleor's 10·2^n s retry schedule in milliseconds: all six tries, about 0.3 s in all
PAID_LINE = line("ov_100", "pro")
SHIRT = {"id": "T3JkZXJMaW5lOnNoaXJ0", "quantity": 1, "productSku": "TSHIRT-M",
         "variant": {"id": "UHJvZHVjdFZhcmlhbnQ6c2hpcnQ=", "sku": "TSHIRT-M", "metadata": []}}


@server_fixture
def shop(schema_dir) -> Iterator[FakeSaleor]:
    with FakeSaleor(retry_scale=SCALE, login_seconds=0.0) as fake:
        yield fake


@dataclass
class Deployed:
    app_id: str
    hooks: dict[str, str]  # event -> webhook id
    port: int  # where the provisioner will listen (nothing does yet)


def deploy(shop: FakeSaleor) -> Deployed:
    """The app and its three webhooks as `pulumi up` makes them, aimed at a provisioner that is not running."""
    port = free_port()
    urls = {e.lower(): f"http://127.0.0.1:{port}/webhooks/{e.lower().replace('_', '-')}" for e in ORDER_EVENTS}
    app_id, hooks = deploy_app(shop, urls)
    return Deployed(app_id, hooks, port)


def catchup_settings(pg_url: str, control_plane, shop: FakeSaleor, token: str | None, **overrides):
    control_plane.add_issuer("cmp-provisioner", SERVICE_JWT_SECRET)
    values = {"database_url": pg_url, "saleor_allowed_origins": shop.origin, "saleor_api_url": shop.api_url,
              "saleor_orders_query": document("orders_since"), "catchup_interval_seconds": 0.5,
              "catchup_overlap_seconds": 60, "catchup_first_lookback_seconds": 3600}
    if token is not None:
        values["saleor_app_token"] = token
    return make_settings(control_plane_url=control_plane.url, **{**values, **overrides})


@contextlib.contextmanager
def replicas(settings, ports: list[int | None]) -> Iterator[list[tuple[str, object]]]:
    """Provisioner apps on one database, each on its port (None: any); (url, app) each."""
    with contextlib.ExitStack() as stack:
        running = []
        for port in ports:
            app = create_app(settings)
            running.append((stack.enter_context(run_uvicorn_in_thread(app, port)), app))
        yield running


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_orders_paid_while_the_provisioner_was_down_are_provisioned_exactly_once(shop, pg_url, control_plane):
    deployed = deploy(shop)
    orders = shop.events
    paid = [orders.create_order([PAID_LINE]) for _ in range(3)]
    for order in paid:
        orders.pay_order(order)
    cancelled = orders.create_order([PAID_LINE])
    orders.pay_order(cancelled)
    orders.cancel_order(cancelled)
    # Saleor fails a pending delivery of a webhook that is deactivated: mute only once these have run out.
    orders.wait(orders.settled, what="Saleor to give up on the first deliveries")
    shop.edit_webhook(deployed.hooks["ORDER_FULLY_PAID"], isActive=False)  # muted in the dashboard
    muted = orders.create_order([PAID_LINE])
    orders.pay_order(muted)
    shop.edit_webhook(deployed.hooks["ORDER_FULLY_PAID"], isActive=True)
    shirt = orders.create_order([SHIRT])  # nothing of ours in it: a dead letter with the reason
    orders.pay_order(shirt)
    unpaid = orders.create_order([PAID_LINE])
    orders.wait(orders.settled, what="Saleor to give up on every delivery")

    failed = orders.failed()
    # ORDER_CREATED for each of the 7 orders, ORDER_FULLY_PAID for the 5 paid while their webhook was on
    assert Counter(d["eventType"] for d in failed) == {"ORDER_CREATED": 7, "ORDER_FULLY_PAID": 5, "ORDER_CANCELLED": 1}
    assert {len(d["attempts"]) for d in failed} == {6}  # every retry ran, then FAILED for good
    assert not any(d["order"] == muted and d["eventType"] == "ORDER_FULLY_PAID" for d in failed)

    settings = catchup_settings(pg_url, control_plane, shop, shop.app_token(deployed.app_id))
    with replicas(settings, [deployed.port, None]) as running:
        url, app = running[0]
        store = app.state.provisioner.store
        wait_until(lambda: len(inbox_rows(store)) >= 6 and all(r.status != PENDING for r in inbox_rows(store)),
                   what="catch-up's rows to be worked")
        rows = {(r.event, r.order_id): r for r in inbox_rows(store)}
        assert {k for k in rows if k[1] != unpaid} == {
            *(("ORDER_FULLY_PAID", o) for o in (*paid, muted, shirt, cancelled)), ("ORDER_CANCELLED", cancelled)}
        assert rows[("ORDER_FULLY_PAID", shirt)].status == DEAD
        assert rows[("ORDER_FULLY_PAID", shirt)].last_error.startswith("no order line maps to an offering")
        assert all(r.status == DONE for k, r in rows.items() if k[1] != shirt)

        creates = control_plane.calls_to("POST", "/instances")
        assert sorted(c.idempotency_key for c in creates) == sorted(f"saleor-order:{o}" for o in (*paid, muted))
        cancels = control_plane.calls_to("POST", "/instances/cancel")
        assert [c.idempotency_key for c in cancels] == [f"saleor-cancel:{cancelled}"]

        # Saleor's FAILED deliveries sent again, and a duplicate firing: the inbox answers duplicate, nothing new.
        token = shop.staff_token()
        for delivery in orders.failed():
            answer = shop.graphql("mutation R($id: ID!) { eventDeliveryRetry(id: $id) { errors { code } } }",
                                  {"id": delivery["id"]}, token)
            assert answer["data"]["eventDeliveryRetry"]["errors"] == []
        orders.fire("ORDER_FULLY_PAID", paid[0], times=2)
        orders.wait(lambda: not orders.failed() and orders.settled(), what="the re-sent deliveries to succeed")
        wait_until(lambda: metric(url, "cmp_provisioner_deliveries_total", outcome="duplicate") >= 5 + 1 + 2,
                   what="the re-sent deliveries to be answered")
        assert len(control_plane.calls_to("POST", "/instances")) == 4
        assert len(control_plane.calls_to("POST", "/instances/cancel")) == 1
        missed = sum(metric(u, "cmp_provisioner_catchup_orders_total", outcome="missed") for u, _ in running)
        assert missed == 7  # 6 paid (one of them cancelled since) and 1 cancel, all undelivered by Saleor
        assert metric(url, "cmp_provisioner_catchup_lag_seconds") < 60
        statuses = lambda: {httpx.get(f"{u}/readyz").json()["catch_up"].split(":")[0] for u, _ in running}  # noqa: E731
        assert statuses() <= {"ok", "standby"}  # the replica without the lock stands by
        wait_until(lambda: "ok" in statuses(), what="a replica to report its read")


def test_two_replicas_reading_at_once_take_turns_on_the_lock_and_add_each_row_once(shop, pg_url, control_plane):
    import asyncio

    from service_src.common.http import HttpSession
    from service_src.provisioner.catchup import CatchUp
    from service_src.provisioner.inbox import InboxStore
    from service_src.provisioner.metrics import Metrics

    deployed = deploy(shop)
    for _ in range(5):
        shop.events.pay_order(shop.events.create_order([PAID_LINE]))
    settings = catchup_settings(pg_url, control_plane, shop, shop.app_token(deployed.app_id))
    store = InboxStore(settings.database_url.get_secret_value())
    store.migrate()

    async def both():
        sessions = [HttpSession(timeout_seconds=5) for _ in range(2)]
        try:
            runs = [CatchUp(settings, store, http, Metrics()) for http in sessions]
            return await asyncio.gather(*(run.run_once() for run in runs))
        finally:
            for http in sessions:
                await http.aclose()

    try:
        results = asyncio.run(both())
        assert sum(sum(r.missed.values()) for r in results) == 5  # each paid order once, whoever read it
        assert len(inbox_rows(store)) == 5
        again = asyncio.run(both())  # the cursor's overlap reads them again: the inbox has each already
        assert sum(sum(r.missed.values()) for r in again) == 0 and len(inbox_rows(store)) == 5
    finally:
        store.dispose()


def test_without_a_usable_token_webhooks_still_work_and_readyz_says_why(shop, pg_url, control_plane):
    deployed = deploy(shop)
    token = shop.app_token(deployed.app_id)
    settings = catchup_settings(pg_url, control_plane, shop, None)
    with replicas(settings, [deployed.port]) as [(url, _)]:
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["catch_up"] == ("off: SALEOR_APP_TOKEN is not set: orders are taken from webhooks only "
                                            "(docs/saleor.md, the app token)")
    shop.revoke_app_token(token)
    settings = catchup_settings(pg_url, control_plane, shop, token)
    with replicas(settings, [deployed.port]) as [(url, _)]:
        shop.events.pay_order(shop.events.create_order([PAID_LINE]))  # the webhook path needs no token
        wait_until(lambda: control_plane.calls_to("POST", "/instances"), what="the webhook's order")
        status = wait_until(lambda: (s := httpx.get(f"{url}/readyz").json()["catch_up"]).startswith("refused") and s,
                            what="catch-up to be refused")
        assert "Saleor refused the app token (DecodeError" in status
        assert metric(url, "cmp_provisioner_catchup_runs_total", outcome="refused") >= 1
        assert metric(url, "cmp_provisioner_catchup_lag_seconds") == float("inf")


def test_a_throttling_saleor_is_retried_with_backoff(shop, pg_url, control_plane):
    deployed = deploy(shop)
    order = shop.events.create_order([PAID_LINE])
    shop.edit_webhook(deployed.hooks["ORDER_FULLY_PAID"], isActive=False)
    shop.events.pay_order(order)
    shop.fail_next("http_429", root="orders", times=2)
    shop.fail_next("http_503", root="orders", times=1)
    settings = catchup_settings(pg_url, control_plane, shop, shop.app_token(deployed.app_id),
                                retry_backoff_seconds=0.01)
    with replicas(settings, [deployed.port]):
        wait_until(lambda: control_plane.calls_to("POST", "/instances"), what="the order caught up")
    statuses = [r.status for r in shop.requests if "orders" in r.roots]
    assert statuses[:4] == [429, 429, 503, 200]


def test_an_operator_catches_up_from_a_time_with_the_command(shop, pg_url, control_plane, capsys):
    deployed = deploy(shop)
    shop.edit_webhook(deployed.hooks["ORDER_FULLY_PAID"], isActive=False)
    order = shop.events.create_order([PAID_LINE])
    shop.events.pay_order(order)
    settings = catchup_settings(pg_url, control_plane, shop, shop.app_token(deployed.app_id))
    env = {"DATABASE_URL": pg_url, "CONTROL_PLANE_URL": control_plane.url, "SERVICE_JWT_SECRET": SERVICE_JWT_SECRET,
           "SALEOR_ALLOWED_ORIGINS": shop.origin, "SALEOR_API_URL": shop.api_url,
           "SALEOR_ORDERS_QUERY": document("orders_since"),
           "SALEOR_APP_TOKEN": settings.saleor_app_token.get_secret_value()}
    assert cli(["migrate"], env).returncode == 0
    done = cli(["catch-up", "--since", "2026-01-01T00:00:00Z"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("catch-up since 2026-01-01T00:00:00+00:00: 1 orders read, 1 missed by the webhooks "
                                  "(into the inbox: ORDER_FULLY_PAID 1), 0 already received; cursor at ")
    assert settings.saleor_app_token.get_secret_value() not in done.stdout + done.stderr
    assert_one_line_usage_error(cli_main, ["catch-up", "--since", "yesterday"], capsys, "cmp-provisioner catch-up")
    assert_one_line_usage_error(cli_main, ["catch-up", "--since", "2026-01-01T00:00:00"], capsys,
                                "cmp-provisioner catch-up")
