"""Inbox and worker against a real PostgreSQL and the control-plane fake: exactly once, nothing lost."""

from __future__ import annotations

import random
from collections import Counter

from service_src.provisioner.inbox import DEAD, DONE, PENDING, RECORDED
from service_src.provisioner.payloads import OrderEvent, parse_payload
from service_src.provisioner.worker import backoff_seconds, purchases
from tests.services.provisioner.helpers import body_of, inbox_rows, line, order_payload, wait_until

PAID = "order-fully-paid"
CANCELLED = "order-cancelled"
CREATED = "order-created"


def statuses(provisioner) -> Counter:
    return Counter(row.status for row in inbox_rows(provisioner.store))


def settled(provisioner, count: int) -> bool:
    rows = inbox_rows(provisioner.store)
    return len(rows) == count and all(row.status != PENDING for row in rows)


def refused_while_down(provisioner, orders: list[str]) -> bool:
    """Whether the worker has tried a call for one of ``orders`` and found the control plane refusing connections
    ("POST /instances failed: ..." or "POST /instances/cancel failed: ...")."""
    return any(
        r.order_id in orders and r.status == PENDING and " failed: " in (r.last_error or "")
        for r in inbox_rows(provisioner.store)
    )


def test_paid_order_becomes_one_instance_with_the_contract_call(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    order_id = "T3JkZXI6YWJj"
    assert provisioner.deliver(PAID, body_of(order_payload(order_id))).status_code == 200
    wait_until(lambda: settled(provisioner, 1), what="the paid order to settle")

    [call] = control_plane.calls_to("POST", "/instances")
    assert call.status == 201
    assert call.idempotency_key == f"saleor-order:{order_id}"
    assert call.issuer == "cmp-provisioner"
    assert call.body == {
        "order_id": order_id,
        "order_number": "42",
        "user_email": "buyer@example.com",
        "channel": "default-channel",
        "offering_version_id": "ov_100",
        "plan_id": "pro",
        "quantity": 1,
    }
    [row] = inbox_rows(provisioner.store)
    assert row.status == DONE
    [instance] = control_plane.instances_for_order(order_id)
    assert row.result == {"instances": {"ov_100:pro": instance.instance_id}}


def test_control_plane_refusing_our_token_is_a_permanent_failure(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    control_plane.add_issuer("cmp-provisioner", "a-different-secret-of-at-least-32-bytes")
    provisioner.deliver(PAID, body_of(order_payload("T3JkZXI6and0")))
    wait_until(lambda: settled(provisioner, 1), what="settle")
    [letter] = provisioner.store.dead_letters()
    assert letter.reason.startswith("POST /instances answered 401: invalid token")
    assert len(control_plane.calls) == 1


def test_lines_map_by_metadata_then_sku_and_foreign_lines_are_skipped(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    order_id = "T3JkZXI6bWl4"
    no_variant = line("ov_300", "team", quantity=3)
    no_variant["variant"] = None
    tshirt = line("x", "y")
    tshirt["productSku"] = tshirt["variant"]["sku"] = "TSHIRT-RED-L"
    tshirt["variant"]["metadata"] = []
    lines = [
        line("ov_100", "pro"),  # metadata
        line("ov_200", "basic", metadata=False),  # empty metadata: variant SKU
        no_variant,  # variant null: productSku
        tshirt,  # not an offering
        line("ov_100", "pro", quantity=2),  # same offering again: merged into one call
    ]
    provisioner.deliver(PAID, body_of(order_payload(order_id, lines=lines)))
    wait_until(lambda: settled(provisioner, 1), what="settle")
    calls = control_plane.calls_to("POST", "/instances")
    got = sorted((c.body["offering_version_id"], c.body["plan_id"], c.body["quantity"]) for c in calls)
    assert got == [("ov_100", "pro", 3), ("ov_200", "basic", 1), ("ov_300", "team", 3)]
    assert {c.idempotency_key for c in calls} == {f"saleor-order:{order_id}"}
    assert len(control_plane.instances_for_order(order_id)) == 3


def test_duplicates_and_replays_make_no_new_work(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    body = body_of(order_payload("T3JkZXI6ZHVw"))
    first = provisioner.deliver(PAID, body)
    assert first.json()["status"] == "accepted"
    wait_until(lambda: settled(provisioner, 1), what="settle")
    for _ in range(3):  # Saleor's retries and a manual "redeliver" in the dashboard
        again = provisioner.deliver(PAID, body)
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"
    # A redelivery whose body differs in bytes (re-serialised) is still the same (event, order).
    reordered = body.replace(b'"number":"42"', b'"number": "42"')
    assert provisioner.deliver(PAID, reordered).json()["status"] == "duplicate"
    # A row is committed before its 200: one row, settled, so the worker has nothing more to call.
    assert settled(provisioner, 1)
    assert len(control_plane.calls_to("POST", "/instances")) == 1


def test_order_created_is_recorded_only(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    body = body_of(order_payload("T3JkZXI6bmV3", typename="OrderCreated"))
    assert provisioner.deliver(CREATED, body).status_code == 200
    # A paid order delivered after it is worked after it: once that one is done, the worker has passed it by.
    assert provisioner.deliver(PAID, body_of(order_payload("T3JkZXI6bmV4"))).status_code == 200
    wait_until(lambda: settled(provisioner, 2), what="the paid order after it")
    created = next(r for r in inbox_rows(provisioner.store) if r.event == "ORDER_CREATED")
    assert (created.status, created.attempts) == (RECORDED, 0)
    assert [c.body["order_id"] for c in control_plane.calls] == ["T3JkZXI6bmV4"]


def test_two_replicas_on_one_database_provision_each_order_once(provisioner_factory, control_plane):
    control_plane.delay_seconds = 0.01  # calls overlap, so both replicas really hold rows at the same time
    replicas = [provisioner_factory(worker_batch_size=5), provisioner_factory(worker_batch_size=5)]
    orders = [f"T3JkZXI6cmVw{i:03d}" for i in range(60)]
    for i, order_id in enumerate(orders):
        lines = [line("ov_100", "pro"), line("ov_200", "basic")] if i % 3 == 0 else None
        assert replicas[i % 2].deliver(PAID, body_of(order_payload(order_id, lines=lines))).status_code == 200
        # Every third delivery is a Saleor retry reaching the other replica.
        if i % 3 == 1:
            assert replicas[(i + 1) % 2].deliver(PAID, body_of(order_payload(order_id))).json()["status"] == (
                "duplicate"
            )
    wait_until(lambda: settled(replicas[0], len(orders)), timeout=60, what="all orders to settle")

    calls = control_plane.calls_to("POST", "/instances")
    per_line = Counter((c.body["order_id"], c.body["offering_version_id"]) for c in calls)
    assert max(per_line.values()) == 1, [k for k, v in per_line.items() if v > 1]
    assert len(control_plane.instances) == len(orders) + len(orders[::3])
    assert statuses(replicas[0]) == Counter({DONE: len(orders)})
    # Both replicas did work (the rows were shared, not all taken by one).
    worked = [
        r.app.state.provisioner.metrics.registry.get_sample_value(
            "cmp_provisioner_worker_rows_total", {"event": "ORDER_FULLY_PAID", "outcome": "done"}
        )
        for r in replicas
    ]
    assert all(w > 0 for w in worked), worked


def test_flaky_then_down_control_plane_ends_with_every_order_exactly_once(provisioner_factory, control_plane):
    replicas = [provisioner_factory(), provisioner_factory()]
    control_plane.fail_rate(0.5, status=503)
    orders = [f"T3JkZXI6Y2hhb3{i:03d}" for i in range(40)]
    for i, order_id in enumerate(orders[:20]):
        lines = [line("ov_100", "pro"), line("ov_200", "basic")] if i % 4 == 0 else None
        replicas[i % 2].deliver(PAID, body_of(order_payload(order_id, lines=lines)))
    wait_until(lambda: [c for c in control_plane.calls if c.status == 503], what="an injected 503")
    control_plane.fail_rate(0.0)
    control_plane.fail_next(3, status=429)
    control_plane.go_down()  # connection refused for a while; deliveries keep arriving and are kept
    for i, order_id in enumerate(orders[20:], start=20):
        lines = [line("ov_100", "pro"), line("ov_200", "basic")] if i % 4 == 0 else None
        assert replicas[i % 2].deliver(PAID, body_of(order_payload(order_id, lines=lines))).status_code == 200
    wait_until(lambda: refused_while_down(replicas[0], orders[20:]), what="an attempt while the control plane is down")
    assert statuses(replicas[0])[PENDING] > 0  # work is waiting, not lost
    control_plane.come_up()
    wait_until(lambda: settled(replicas[0], len(orders)), timeout=60, what="every order to settle")

    assert statuses(replicas[0]) == Counter({DONE: len(orders)})
    for i, order_id in enumerate(orders):
        expected = 2 if i % 4 == 0 else 1
        assert len(control_plane.instances_for_order(order_id)) == expected, order_id
    ok = [c for c in control_plane.calls_to("POST", "/instances") if c.status in (200, 201)]
    assert Counter(c.status for c in control_plane.calls_to("POST", "/instances"))[503] > 0
    assert len(ok) == len(control_plane.instances)  # no line succeeded twice


def test_cancel_after_paid_cancels_the_instances(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    order_id = "T3JkZXI6Y2Fu"
    provisioner.deliver(PAID, body_of(order_payload(order_id)))
    wait_until(lambda: settled(provisioner, 1), what="paid")
    provisioner.deliver(CANCELLED, body_of(order_payload(order_id, typename="OrderCancelled")))
    wait_until(lambda: settled(provisioner, 2), what="cancel")
    [call] = control_plane.calls_to("POST", "/instances/cancel")
    assert call.idempotency_key == f"saleor-cancel:{order_id}"
    assert call.body == {"order_id": order_id}
    [instance] = control_plane.instances_for_order(order_id)
    assert instance.status == "cancelled"
    cancel_row = next(r for r in inbox_rows(provisioner.store) if r.event == "ORDER_CANCELLED")
    assert cancel_row.result == {"cancelled": [instance.instance_id]}


def test_cancel_during_paid_retries_leaves_no_active_instance(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    order_id = "T3JkZXI6d2FpdA"
    control_plane.go_down()
    provisioner.deliver(PAID, body_of(order_payload(order_id)))
    provisioner.deliver(CANCELLED, body_of(order_payload(order_id, typename="OrderCancelled")))
    wait_until(lambda: refused_while_down(provisioner, [order_id]), what="an attempt while the control plane is down")
    control_plane.come_up()
    wait_until(lambda: settled(provisioner, 2), what="both rows")
    # The paid row settles first (the cancel waits for it) and, seeing the cancel, provisions nothing.
    assert [c.path for c in control_plane.calls if c.status < 300] == ["/instances/cancel"]
    assert control_plane.instances_for_order(order_id, status="active") == []
    assert statuses(provisioner) == Counter({DONE: 2})


def test_paid_arriving_after_the_cancel_provisions_nothing(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    order_id = "T3JkZXI6bGF0ZQ"
    provisioner.deliver(CANCELLED, body_of(order_payload(order_id, typename="OrderCancelled")))
    wait_until(lambda: settled(provisioner, 1), what="cancel")
    provisioner.deliver(PAID, body_of(order_payload(order_id)))  # Saleor's late retry of the paid webhook
    wait_until(lambda: settled(provisioner, 2), what="paid")
    assert control_plane.calls_to("POST", "/instances") == []
    paid = next(r for r in inbox_rows(provisioner.store) if r.event == "ORDER_FULLY_PAID")
    assert (paid.status, paid.result) == (
        DONE,
        {"instances": {}, "skipped": "order cancelled before it was provisioned"},
    )


def test_permanent_4xx_and_unmappable_orders_become_dead_letters(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    control_plane.fail_next(1, status=409)
    provisioner.deliver(PAID, body_of(order_payload("T3JkZXI6NDA5")))
    wait_until(lambda: settled(provisioner, 1), what="first")
    tshirt = line("x", "y", metadata=False)
    tshirt["productSku"] = tshirt["variant"]["sku"] = "TSHIRT-RED-L"
    provisioner.deliver(PAID, body_of(order_payload("T3JkZXI6dHNo", lines=[tshirt])))
    wait_until(lambda: settled(provisioner, 2), what="second")
    dead = {d.order_id: d for d in provisioner.store.dead_letters()}
    assert "answered 409: injected failure" in dead["T3JkZXI6NDA5"].reason
    assert dead["T3JkZXI6NDA5"].attempts == 1  # permanent: not retried
    assert dead["T3JkZXI6dHNo"].reason == "no order line maps to an offering (1 lines, SKUs ['TSHIRT-RED-L'])"
    assert len(control_plane.calls_to("POST", "/instances")) == 1


def test_retries_are_bounded_then_dead_lettered_and_replayable(
    provisioner_factory, control_plane, pg_url, monkeypatch, capsys
):
    from service_src.provisioner.cli import main

    provisioner = provisioner_factory(retry_max_attempts=3)
    control_plane.fail_rate(1.0, status=500)
    order_id = "T3JkZXI6Ym91bmQ"
    provisioner.deliver(PAID, body_of(order_payload(order_id)))
    wait_until(lambda: settled(provisioner, 1), what="dead letter")
    assert len(control_plane.calls_to("POST", "/instances")) == 3
    [letter] = provisioner.store.dead_letters()
    assert letter.reason.startswith("gave up after 3 attempts: POST /instances answered 500")

    monkeypatch.setenv("DATABASE_URL", pg_url)
    assert main(["dead-letters", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{letter.id}\tORDER_FULLY_PAID\t{order_id}\tattempts=3\tgave up after 3 attempts" in listed
    control_plane.fail_rate(0.0)
    assert main(["dead-letters", "replay", str(letter.id)]) == 0
    wait_until(lambda: statuses(provisioner) == Counter({DONE: 1}), what="replayed row done")
    assert len(control_plane.instances_for_order(order_id)) == 1
    assert main(["dead-letters", "replay", str(letter.id)]) == 1
    assert f"inbox row {letter.id} is done, not a dead letter" in capsys.readouterr().err
    assert main(["dead-letters", "list", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_unreadable_rows_never_crash_the_worker(provisioner_factory, control_plane):
    provisioner = provisioner_factory()
    store = provisioner.store
    # Rows that could only get here around the endpoint (a restore, a manual insert, a bug elsewhere).
    store.record("ORDER_FULLY_PAID", "bad-utf8", b"\xff\xfe{not utf-8")
    store.record("ORDER_FULLY_PAID", "bad-json", b'{"__typename": "OrderFullyPaid", "order": ')
    store.record("ORDER_FULLY_PAID", "wrong-id", body_of(order_payload("someone-else")))
    store.record("ORDER_REFUNDED", "odd-event", body_of(order_payload("odd-event")))
    provisioner.deliver(PAID, body_of(order_payload("T3JkZXI6Z29vZA")))
    wait_until(lambda: settled(provisioner, 5), what="all rows")
    reasons = {d.order_id: d.reason for d in store.dead_letters()}
    assert reasons["bad-utf8"].startswith("payload unusable: body is not valid UTF-8")
    assert reasons["bad-json"].startswith("payload unusable: body is not valid JSON")
    assert "differs from the row's" in reasons["wrong-id"]
    assert reasons["odd-event"] == "unknown event 'ORDER_REFUNDED'"
    assert [r.status for r in inbox_rows(store) if r.order_id == "T3JkZXI6Z29vZA"] == [DONE]
    assert statuses(provisioner)[DEAD] == 4


# ---- without servers: what one order asks of the control plane, and when a failed row comes back -------------


def test_purchases_merge_lines_of_the_same_offering():
    payload = parse_payload(
        body_of(order_payload("o", lines=[line("ov_1", "pro", quantity=2), line("ov_1", "pro"), line("ov_2", "x")])),
        OrderEvent.ORDER_FULLY_PAID,
    )
    got = {(p.key, p.quantity, len(p.line_ids)) for p in purchases(payload)}
    assert got == {("ov_1:pro", 3, 2), ("ov_2:x", 1, 1)}


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    for attempt, full in [(1, 1), (2, 2), (3, 4), (6, 32), (10, 300), (30, 300)]:
        delays = [backoff_seconds(attempt, 1.0, 300.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays), (attempt, min(delays), max(delays))
        assert len({round(d, 6) for d in delays}) > 1  # jittered
