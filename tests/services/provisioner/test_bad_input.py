"""Bad deliveries get a 4xx that names the problem; nothing is stored, nothing is retried."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.services.provisioner.helpers import body_of, inbox_rows, order_payload

PAID = "order-fully-paid"


@pytest.fixture
def provisioner(provisioner_factory):
    return provisioner_factory(max_body_bytes=4096)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"__typename": "OrderFullyPaid", "order": {', 400, "body is not valid JSON: Expecting property name"),
        (b"\xff\xfe\x00garbage", 400, "body is not valid UTF-8 (byte 0)"),
        (b"[1, 2]", 422, "body must be a JSON object (the subscription's event), got list"),
        (b'{"__typename": "OrderFullyPaid"}', 422, "order is missing or not an object"),
        (b'{"__typename": "OrderFullyPaid", "order": null}', 422, "order is missing or not an object"),
        (b'{"order": {"id": "x", "number": "1"}}', 422, "__typename must be 'OrderFullyPaid'"),
        (b'{"__typename": "OrderFullyPaid", "order": {"number": "1"}}', 422, "order.id: Field required"),
        (
            body_of(
                order_payload(
                    "T3JkZXI6cQ", lines=[{"id": "l1", "quantity": 0, "productSku": "ov_1:pro", "variant": None}]
                )
            ),
            422,
            "order.lines.0.quantity: Input should be greater than or equal to 1",
        ),
    ],
    ids=[
        "malformed-json",
        "not-utf8",
        "not-an-object",
        "missing-order",
        "null-order",
        "no-typename",
        "no-order-id",
        "zero-quantity",
    ],
)
def test_bad_payloads_are_refused_and_not_stored(provisioner, control_plane, body, status, detail):
    response = provisioner.deliver(PAID, body)
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail), response.json()["detail"]
    assert inbox_rows(provisioner.store) == []
    assert control_plane.calls == []


def test_oversized_body_is_413_naming_the_limit(provisioner):
    big = order_payload("T3JkZXI6Ymln")
    big["order"]["padding"] = "x" * 5000
    body = body_of(big)
    response = provisioner.deliver(PAID, body)
    assert response.status_code == 413
    assert response.json()["detail"] == f"body of {len(body)} bytes exceeds MAX_BODY_BYTES=4096"
    assert inbox_rows(provisioner.store) == []


def test_oversized_chunked_body_without_length_is_413(provisioner):
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    response = provisioner.client.post(
        f"/webhooks/{PAID}",
        content=chunks(),
        headers={"Saleor-Event": "order_fully_paid", "Saleor-Signature": f"{'e' * 40}..{'s' * 342}"},
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "body exceeds MAX_BODY_BYTES=4096"
    assert inbox_rows(provisioner.store) == []


def test_missing_event_header_is_400(provisioner):
    body = body_of(order_payload("T3JkZXI6ZXY"))
    headers = {"Saleor-Signature": provisioner.saleor_key.sign(body), "Saleor-Api-Url": provisioner.saleor_api_url}
    response = provisioner.client.post(f"/webhooks/{PAID}", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == "Saleor-Event header is missing"


def test_health_readiness_and_metrics(provisioner, postgres):
    assert provisioner.client.get("/healthz").json() == {"status": "ok"}
    from service_src.provisioner.schema import head_revision

    assert provisioner.client.get("/readyz").json() == {
        "status": "ok", "database": "ok", "schema": head_revision(),
        "catch_up": "off: SALEOR_API_URL, SALEOR_ORDERS_QUERY, SALEOR_APP_TOKEN are not set: orders are taken from "
                    "webhooks only (docs/saleor.md, the app token)"}
    body = body_of(order_payload("T3JkZXI6bWV0"))
    provisioner.deliver(PAID, body)
    provisioner.deliver(PAID, b"{")
    text = provisioner.client.get("/metrics").text
    assert 'cmp_provisioner_deliveries_total{event="ORDER_FULLY_PAID",outcome="accepted"} 1.0' in text
    assert 'cmp_provisioner_deliveries_total{event="ORDER_FULLY_PAID",outcome="rejected_payload"} 1.0' in text
    assert "cmp_provisioner_inbox_rows{status=" in text


def test_readyz_is_503_when_the_database_is_unreachable(provisioner_factory):
    from tests.support.net import free_port

    dead_url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1"
    # The schema is created at start-up, so point a started app's store at a dead database afterwards.
    provisioner = provisioner_factory(worker_enabled=False)
    from service_src.provisioner.inbox import make_engine

    provisioner.store.engine = make_engine(dead_url)
    response = provisioner.client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "OperationalError"}


def test_secrets_do_not_leak_into_responses_logs_or_rows(provisioner_factory, control_plane, capsys):
    from tests.services.provisioner.helpers import SERVICE_JWT_SECRET

    provisioner = provisioner_factory()
    body = body_of(order_payload("T3JkZXI6c2Vj"))
    signature = provisioner.saleor_key.sign(body)
    provisioner.deliver(PAID, body, signature=signature.replace("..", "..AAAA"))  # a broken signature: refused
    provisioner.deliver(PAID, body, signature=signature)
    control_plane.add_issuer("cmp-provisioner", "z" * 40)  # our token is now refused: a dead letter
    from tests.services.provisioner.helpers import wait_until

    wait_until(lambda: [r for r in inbox_rows(provisioner.store) if r.status != "pending"], what="settle")
    seen = capsys.readouterr()
    rows = json.dumps([[r.last_error, r.result] for r in inbox_rows(provisioner.store)])
    for secret in (SERVICE_JWT_SECRET, signature.split("..")[1]):
        assert secret not in seen.out + seen.err
        assert secret not in rows
    assert "Bearer" not in seen.out + seen.err


def test_only_post_is_served(provisioner):
    assert provisioner.client.get(f"/webhooks/{PAID}").status_code == 405
    assert httpx.post(provisioner.url + "/webhooks/order-refunded", content=b"{}").status_code == 404


async def test_concurrent_burst_with_duplicates_accepts_each_order_once(provisioner):
    """Deliveries committed together (group commit) still get one 'accepted' per (event, order)."""
    import asyncio

    bodies = [body_of(order_payload(f"T3JkZXI6YnVyc3{i % 25:02d}")) for i in range(50)]
    async with httpx.AsyncClient(base_url=provisioner.url, timeout=10) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"/webhooks/{PAID}",
                    content=b,
                    headers={
                        "Saleor-Event": "order_fully_paid",
                        "Saleor-Signature": provisioner.saleor_key.sign(b),
                        "Saleor-Api-Url": provisioner.saleor_api_url,
                    },
                )
                for b in bodies
            )
        )
    assert [a.status_code for a in answers] == [200] * 50
    outcomes = [(a.json()["order_id"], a.json()["status"]) for a in answers]
    accepted = sorted(order for order, status in outcomes if status == "accepted")
    assert accepted == sorted({order for order, _ in outcomes})
    assert len(inbox_rows(provisioner.store)) == 25


def test_inbox_unavailable_is_503_so_saleor_retries(provisioner_factory):
    from service_src.provisioner.inbox import make_engine
    from tests.support.net import free_port

    provisioner = provisioner_factory(worker_enabled=False)
    provisioner.store.engine = make_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=1"
    )
    body = body_of(order_payload("T3JkZXI6ZG93bg"))
    response = provisioner.deliver(PAID, body)
    assert response.status_code == 503
    assert response.json()["detail"] == "the inbox database is unavailable; retry later"
