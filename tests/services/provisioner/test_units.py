"""Line mapping, payloads and the backoff, without servers."""

from __future__ import annotations

import random

import pytest

from service_src.provisioner.offerings import Offering, offering_for_line
from service_src.provisioner.payloads import OrderEvent, OrderLine, PayloadError, parse_payload
from service_src.provisioner.worker import backoff_seconds, purchases
from tests.services.provisioner.helpers import body_of, line, order_payload


def _line(**fields) -> OrderLine:
    return OrderLine.model_validate({"id": "l", "quantity": 1, **fields})


def test_offering_mapping():
    meta = {
        "id": "v",
        "sku": "other:sku",
        "metadata": [{"key": "cmp.offering_version_id", "value": "ov_1"}, {"key": "cmp.plan_id", "value": "pro"}],
    }
    assert offering_for_line(_line(variant=meta)) == Offering("ov_1", "pro")  # metadata wins over SKU
    assert offering_for_line(_line(variant={"id": "v", "sku": "ov_2:team", "metadata": []})) == Offering("ov_2", "team")
    half = {"id": "v", "sku": "ov_3:basic", "metadata": [{"key": "cmp.offering_version_id", "value": "ov_9"}]}
    assert offering_for_line(_line(variant=half)) == Offering("ov_3", "basic")  # half metadata: SKU
    assert offering_for_line(_line(productSku="ov_4:pro", variant=None)) == Offering("ov_4", "pro")
    for sku in ("TSHIRT", "a:b:c", ":pro", "ov_1:", "ov 1:pro", None):
        assert offering_for_line(_line(productSku=sku, variant=None)) is None, sku


def test_purchases_merge_lines_of_the_same_offering():
    payload = parse_payload(
        body_of(order_payload("o", lines=[line("ov_1", "pro", quantity=2), line("ov_1", "pro"), line("ov_2", "x")])),
        OrderEvent.ORDER_FULLY_PAID,
    )
    got = {(p.key, p.quantity, len(p.line_ids)) for p in purchases(payload)}
    assert got == {("ov_1:pro", 3, 2), ("ov_2:x", 1, 1)}


def test_the_interface_example_payload_parses():
    """The payload DESIGN/issue 6 give for the Saleor subscription, byte for byte."""
    body = (
        b'{"__typename":"OrderFullyPaid","order":{"id":"T3JkZXI6MQ==","number":"42","userEmail":"a@b.c",'
        b'"channel":{"slug":"default-channel"},"total":{"gross":{"amount":10.0,"currency":"USD"}},'
        b'"lines":[{"id":"T3JkZXJMaW5lOjE=","quantity":1,"productSku":"ov_100:pro","variant":{"id":"UHY6MQ==",'
        b'"sku":"ov_100:pro","metadata":[{"key":"cmp.offering_version_id","value":"ov_100"},'
        b'{"key":"cmp.plan_id","value":"pro"}]}}]}}'
    )
    payload = parse_payload(body, OrderEvent.ORDER_FULLY_PAID)
    assert payload.order.number == "42"
    assert [(p.offering, p.quantity) for p in purchases(payload)] == [(Offering("ov_100", "pro"), 1)]
    with pytest.raises(PayloadError, match="__typename must be 'OrderCancelled'"):
        parse_payload(body, OrderEvent.ORDER_CANCELLED)


def test_event_names():
    assert [(e.header, e.path, e.typename) for e in OrderEvent] == [
        ("order_fully_paid", "order-fully-paid", "OrderFullyPaid"),
        ("order_created", "order-created", "OrderCreated"),
        ("order_cancelled", "order-cancelled", "OrderCancelled"),
    ]


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    for attempt, full in [(1, 1), (2, 2), (3, 4), (6, 32), (10, 300), (30, 300)]:
        delays = [backoff_seconds(attempt, 1.0, 300.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays), (attempt, min(delays), max(delays))
        assert len({round(d, 6) for d in delays}) > 1  # jittered
