"""The subscription payload as Saleor delivers it, parsed and checked against the endpoint's event."""

from __future__ import annotations

import pytest

from service_src.provisioner.offerings import Offering
from service_src.provisioner.payloads import OrderEvent, PayloadError, parse_payload
from service_src.provisioner.worker import purchases


def test_the_interface_example_payload_parses():
    """The payload the Saleor subscription delivers (docs/contracts.md), byte for byte."""
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
