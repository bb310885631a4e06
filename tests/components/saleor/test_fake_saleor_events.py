"""The fake Saleor fails like Saleor: its retry schedule, FAILED deliveries, inactive webhooks, eventDeliveryRetry,
duplicate firings, signed bodies, and the orders query the provisioner's catch-up reads with the app's token."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import jwt
from fastapi import FastAPI, Request, Response
from jwt import api_jws

from components.saleor.documents import document, order_subscription
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.components.saleor.fake_saleor_events import MAX_RETRIES, RETRY_BACKOFF_SECONDS, _when
from tests.support.net import run_uvicorn_in_thread
from tests.support.tiers import server_fixture

SCALE = 0.002  # Saleor's 10 s backoff becomes 20 ms; every try still happens
LINE = {"id": "T3JkZXJMaW5lOjE=", "quantity": 1, "productSku": "ov_100:pro",
        "variant": {"id": "UHJvZHVjdFZhcmlhbnQ6MQ==", "sku": "ov_100:pro",
                    "metadata": [{"key": "cmp.offering_version_id", "value": "ov_100"}]}}


@dataclass
class Receiver:
    """A webhook target answering `status`; keeps every request."""

    status: int = 200
    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@server_fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        target.received.append((dict(request.headers), await request.body()))
        return Response(status_code=target.status)

    with run_uvicorn_in_thread(app) as url:
        target.url = url + "/hook"
        yield target


@server_fixture
def saleor(schema_dir) -> Iterator[FakeSaleor]:
    with FakeSaleor(retry_scale=SCALE) as fake:
        yield fake


def gql(fake: FakeSaleor, name_or_text: str, variables: dict, token: str | None = None) -> dict:
    return fake.graphql(document(name_or_text) if "{" not in name_or_text else name_or_text, variables, token)


def staff_token(fake: FakeSaleor) -> str:
    return fake.staff_token()


def app_with_webhook(fake: FakeSaleor, target: str, event: str = "ORDER_FULLY_PAID", *,
                     permissions: tuple[str, ...] = ("MANAGE_ORDERS",), query: str | None = None) -> tuple[str, str]:
    """(app id, webhook id), made through the GraphQL API as the provider makes them."""
    token = staff_token(fake)
    app = gql(fake, "app_create", {"input": {"name": "CMP Provisioner", "identifier": "cmp-provisioner",
                                             "permissions": list(permissions)}}, token)["data"]["appCreate"]
    hook = gql(fake, "webhook_create", {"input": {
        "app": app["app"]["id"], "name": event, "targetUrl": target, "asyncEvents": [event], "isActive": True,
        "query": query or order_subscription(event)}}, token)["data"]["webhookCreate"]
    assert not hook["errors"], hook
    return app["app"]["id"], hook["webhook"]["id"]


def test_a_failing_target_gets_six_tries_on_the_10_2n_schedule_then_failed(saleor, receiver):
    receiver.status = 503
    _, hook = app_with_webhook(saleor, receiver.url)
    order = saleor.events.create_order([LINE])
    saleor.events.pay_order(order)
    saleor.events.wait(saleor.events.settled, what="the delivery to settle")
    (delivery,) = saleor.deliveries(hook)
    assert delivery["status"] == "FAILED"
    assert len(delivery["attempts"]) == 1 + MAX_RETRIES == len(receiver.received)
    stamps = [_when(a["createdAt"]) for a in delivery["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    for n, gap in enumerate(gaps):  # each wait at least Saleor's 10·2^n s, scaled
        assert gap >= RETRY_BACKOFF_SECONDS * 2**n * SCALE * 0.9, gaps
    assert all(a["responseStatusCode"] == 503 and a["status"] == "FAILED" for a in delivery["attempts"])


def test_a_4xx_answer_is_failed_at_once_and_event_delivery_retry_sends_it_again(saleor, receiver):
    receiver.status = 401
    _, hook = app_with_webhook(saleor, receiver.url)
    order = saleor.events.create_order([LINE])
    saleor.events.pay_order(order)
    saleor.events.wait(saleor.events.settled)
    (failed,) = saleor.deliveries(hook)
    assert (failed["status"], len(failed["attempts"])) == ("FAILED", 1)

    receiver.status = 200
    answer = gql(saleor, "mutation R($id: ID!) { eventDeliveryRetry(id: $id) { delivery { id status } "
                         "errors { field code } } }", {"id": failed["id"]}, staff_token(saleor))
    assert answer["data"]["eventDeliveryRetry"]["errors"] == []
    saleor.events.wait(lambda: not saleor.deliveries(hook), what="the retried delivery to succeed")
    assert len(receiver.received) == 2  # a success is deleted: nothing left to list


def test_event_delivery_retry_needs_manage_apps_and_an_existing_delivery(saleor, receiver):
    app_id, _ = app_with_webhook(saleor, receiver.url)
    text = "mutation R($id: ID!) { eventDeliveryRetry(id: $id) { errors { code } } }"
    denied = gql(saleor, text, {"id": "RXZlbnREZWxpdmVyeTo5OQ=="}, saleor.app_token(app_id))
    assert denied["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"
    missing = gql(saleor, text, {"id": "RXZlbnREZWxpdmVyeTo5OQ=="}, staff_token(saleor))
    assert missing["data"]["eventDeliveryRetry"]["errors"] == [{"code": "NOT_FOUND"}]


def test_no_delivery_at_all_while_the_webhook_or_the_app_is_inactive(saleor, receiver):
    app_id, hook = app_with_webhook(saleor, receiver.url)
    saleor.edit_webhook(hook, isActive=False)
    assert saleor.events.fire("ORDER_FULLY_PAID", saleor.events.create_order([LINE])) == []
    saleor.edit_webhook(hook, isActive=True)
    saleor.edit_app(app_id, isActive=False)
    assert saleor.events.fire("ORDER_FULLY_PAID", saleor.events.create_order([LINE])) == []
    saleor.edit_app(app_id, isActive=True, permissions=[])  # an app without MANAGE_ORDERS gets no order events
    assert saleor.events.fire("ORDER_FULLY_PAID", saleor.events.create_order([LINE])) == []
    assert saleor.deliveries(hook) == [] and receiver.received == []


def test_bodies_are_the_subscription_event_signed_with_the_published_key(saleor, receiver):
    app_with_webhook(saleor, receiver.url)
    order = saleor.events.create_order([LINE])
    saleor.events.pay_order(order)
    saleor.events.wait(lambda: len(receiver.received) == 1)
    headers, body = receiver.received[0]
    event = json.loads(body)
    assert event["__typename"] == "OrderFullyPaid" and event["order"]["id"] == order
    assert set(event["order"]) == {"id", "number", "userEmail", "channel", "total", "lines"}
    assert headers["saleor-event"] == "order_fully_paid" and headers["saleor-api-url"] == saleor.api_url
    (jwk,) = httpx.get(saleor.origin + "/.well-known/jwks.json").json()["keys"]
    signed = api_jws.decode_complete(headers["saleor-signature"], jwt.PyJWK(jwk), algorithms=["RS256"],
                                     detached_payload=body)
    assert signed["header"]["b64"] is False and signed["header"]["kid"] == saleor.events.signer.kid


def test_duplicate_firings_deliver_twice_with_different_issued_at(saleor, receiver):
    query = ("subscription { event { __typename issuedAt ... on OrderFullyPaid { order { id } } } }")
    app_with_webhook(saleor, receiver.url, query=query)
    order = saleor.events.create_order([LINE])
    assert len(saleor.events.fire("ORDER_FULLY_PAID", order, times=2)) == 2
    saleor.events.wait(lambda: len(receiver.received) == 2)
    first, second = (json.loads(body) for _, body in receiver.received)
    assert first["order"] == second["order"] == {"id": order}
    assert first["issuedAt"] != second["issuedAt"]


def orders_page(fake: FakeSaleor, token: str, since: str, first: int, after: str | None = None) -> dict:
    return gql(fake, "orders_since", {"since": since, "first": first, "after": after}, token)


def test_orders_since_pages_oldest_change_first_with_the_app_token(saleor, receiver):
    app_id, _ = app_with_webhook(saleor, receiver.url)
    token = saleor.app_token(app_id)
    ids = [saleor.events.create_order([LINE]) for _ in range(5)]
    since = saleor.events.orders[ids[1]]["updatedAt"]
    saleor.events.pay_order(ids[0])  # changed last: now the newest change
    seen, after = [], None
    while True:
        data = orders_page(saleor, token, since, 2, after)["data"]["orders"]
        seen += [e["node"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert [n["id"] for n in seen] == [*ids[1:], ids[0]]
    assert seen[-1]["chargeStatus"] == "FULL" and seen[0]["chargeStatus"] == "NONE"


def test_orders_needs_manage_orders_and_an_active_app_and_a_live_token(saleor, receiver):
    app_id, _ = app_with_webhook(saleor, receiver.url, permissions=())
    since = "2000-01-01T00:00:00+00:00"
    denied = orders_page(saleor, saleor.app_token(app_id), since, 10)
    assert denied["errors"][0]["message"].endswith("MANAGE_ORDERS")
    ok_app, _ = app_with_webhook(saleor, receiver.url)
    token = saleor.app_token(ok_app)
    assert orders_page(saleor, token, since, 10)["data"]["orders"]["edges"] == []
    assert "first" in orders_page(saleor, token, since, 101)["errors"][0]["message"]
    saleor.edit_app(ok_app, isActive=False)  # an inactive app's token authenticates nothing
    assert orders_page(saleor, token, since, 10)["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"
    saleor.edit_app(ok_app, isActive=True)
    saleor.revoke_app_token(token)  # an unknown token is taken for a staff JWT, which it is not
    assert orders_page(saleor, token, since, 10)["errors"][0]["extensions"]["exception"]["code"] == "DecodeError"
