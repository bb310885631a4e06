"""Orders, order events and their webhook deliveries for FakeSaleor: Saleor failing the way Saleor fails.

Each rule and the Saleor 3.20-3.23 source it follows:

- Who gets an event: `saleor/webhook/utils.py` (`get_webhooks_for_event`) selects only webhooks that are
  active, of an app that is active, not removed and holds the event's permission (`WebhookEventAsyncType.
  PERMISSIONS`: MANAGE_ORDERS for order events), subscribed to the event. An event raised while the webhook
  or its app is inactive creates no delivery at all: nothing is pending, failed or retryable, ever.
- The payload: `saleor/webhook/transport/asynchronous/transport.py` (`create_deliveries_for_subscriptions`)
  runs the webhook's subscription query against the event when it is raised; the body is the `event` object.
  Here the query is executed with graphql-core against the schema the fake plays, so the body has exactly the
  fields the subscription selects. Firing the same event twice (`fire(..., times=2)`, as Saleor does when a
  mutation re-triggers it) makes two deliveries whose `issuedAt` differ.
- Sending: `saleor/webhook/transport/utils.py` (`send_webhook_using_http`): POST with `Saleor-Event` (the
  event in lower case), `Saleor-Domain`, `Saleor-Api-Url`, `Saleor-Signature` (detached JWS, RS256,
  `b64: false`, `saleor/core/jwt_manager.py`; keys at `/.well-known/jwks.json`), connect timeout 2 s, read 18 s,
  no redirects followed. Each try is an EventDeliveryAttempt (SUCCESS for a 2xx, FAILED otherwise) with the
  status code (null without an HTTP answer) and the response body.
- Retries: `send_webhook_request_async` is a Celery task with `retry_backoff=10`, `max_retries=5`;
  `handle_webhook_retry` does not retry a 3xx/4xx answer and retries anything else after `10 * 2**n` s
  (10, 20, 40, 80, 160). After the sixth failed try, or a 3xx/4xx, the delivery is FAILED for good. `scale`
  multiplies those delays (a test runs the whole schedule in a fraction of a second); every try still happens.
  A delivery whose webhook was deactivated before a try is marked FAILED without sending.
- Success deletes the delivery (`clear_successful_delivery`); FAILED ones stay, listed by
  `Webhook.eventDeliveries`, until `eventDeliveryRetry(id)` (`saleor/graphql/webhook/mutations/
  event_delivery_retry.py`, MANAGE_APPS) queues the task again with a fresh retry budget.
- Orders: `saleor/graphql/order/schema.py` (`orders`, MANAGE_ORDERS) with `filter.updatedAt {gte, lte}`
  (`saleor/graphql/order/filters.py`, `filter_updated_at`), `sortBy {field: LAST_MODIFIED_AT}` sorting by
  (`updated_at`, `status`, `number`) (`saleor/graphql/order/sorters.py`), and cursor pages
  (`saleor/graphql/core/connection.py`, `create_connection_slice`): `first` (at most 100) or `last` is
  required, the cursor encodes the sort key of an edge's node, `after` continues strictly after it.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from graphql import GraphQLError, execute, parse
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm

if TYPE_CHECKING:
    from tests.components.saleor.fake_saleor import FakeSaleor

RETRY_BACKOFF_SECONDS = 10
MAX_RETRIES = 5
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 18.0
MAX_PAGE = 100
TYPENAMES = {"ORDER_CREATED": "OrderCreated", "ORDER_FULLY_PAID": "OrderFullyPaid", "ORDER_CANCELLED": "OrderCancelled"}
ORDER_EVENT_PERMISSION = "MANAGE_ORDERS"
_SORT_KEYS = {"LAST_MODIFIED_AT": ("updatedAt", "status", "number"), "CREATED_AT": ("created", "status", "number"),
              "NUMBER": ("number",)}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Signer:
    """Saleor's webhook signing key (RS256) and the JWKS that publishes it; signatures as
    `saleor/core/jwt_manager.py` (`jws_encode`) makes them: PyJWT's detached JWS with an unencoded payload."""

    def __init__(self, kid: str = "fake-saleor-1") -> None:
        self.kid = kid
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def sign(self, body: bytes) -> str:
        return api_jws.encode(body, key=self._key, algorithm="RS256", headers={"kid": self.kid},
                              is_payload_detached=True)


def _sort_key(order: dict[str, Any], field: str) -> tuple:
    values = []
    for name in _SORT_KEYS[field]:
        value = order[name]
        values.append(int(value) if name == "number" else _when(value) if name in ("updatedAt", "created") else value)
    return tuple(values)


def _cursor(order: dict[str, Any], field: str) -> str:
    return base64.b64encode(json.dumps([order[n] for n in _SORT_KEYS[field]]).encode()).decode()


def _after(cursor: str, field: str) -> tuple:
    try:
        values = json.loads(base64.b64decode(cursor))
        return _sort_key(dict(zip(_SORT_KEYS[field], values, strict=True)), field)
    except (ValueError, TypeError) as exc:
        raise GraphQLError(f"Received cursor ({cursor}) is invalid.") from exc


class SaleorEvents:
    """The fake's orders and the webhook deliveries their events cause (see the module docstring)."""

    def __init__(self, fake: FakeSaleor, *, scale: float = 1.0, domain: str = "fake-saleor.local") -> None:
        self.fake = fake
        self.scale = scale
        self.domain = domain
        self.signer = Signer()
        self.orders: dict[str, dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []  # every try: delivery id, event, order id, status code
        self._numbers = itertools.count(1)
        self._due: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-saleor-webhook")
        self._http = httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
                                  follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="fake-saleor-celery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    # ---- the shop: orders and what happens to them --------------------------------------------------------
    def create_order(self, lines: list[dict[str, Any]], *, user_email: str = "buyer@example.com",
                     channel: str = "default-channel") -> str:
        """A new unpaid order (ORDER_CREATED fires); returns its id."""
        with self.fake._lock:
            number = next(self._numbers)
            order_id = self.fake.next_id("Order")
            stamp = now_iso()
            self.orders[order_id] = {
                "id": order_id, "number": str(number), "userEmail": user_email, "channel": {"slug": channel},
                "total": {"gross": {"amount": 10.0 * len(lines), "currency": "USD"}}, "lines": lines,
                "status": "UNFULFILLED", "chargeStatus": "NONE", "isPaid": False, "created": stamp,
                "updatedAt": stamp,
            }
        self.fire("ORDER_CREATED", order_id)
        return order_id

    def pay_order(self, order_id: str) -> None:
        """Fully charged (Saleor's charge_status FULL); ORDER_FULLY_PAID fires."""
        self._change(order_id, chargeStatus="FULL", isPaid=True)
        self.fire("ORDER_FULLY_PAID", order_id)

    def cancel_order(self, order_id: str) -> None:
        self._change(order_id, status="CANCELED")
        self.fire("ORDER_CANCELLED", order_id)

    def _change(self, order_id: str, **changes: Any) -> None:
        with self.fake._lock:
            self.orders[order_id].update(changes, updatedAt=now_iso())

    def fire(self, event: str, order_id: str, *, times: int = 1) -> list[str]:
        """Raise `event` for the order `times` times; returns the deliveries made (none for inactive hooks)."""
        made = []
        for _ in range(times):
            with self.fake._lock:
                hooks = [h for h in self.fake.state.webhooks.values() if self._subscribed(h, event)]
                root = {"event": {"__typename": TYPENAMES[event], "issuedAt": now_iso(), "version": "3.23",
                                  "order": dict(self.orders[order_id])}}
                for hook in hooks:
                    made.append(self._new_delivery(hook, event, order_id, self._payload(hook, root)))
        for delivery_id in made:
            self._schedule(delivery_id, 0.0)
        return made

    def _subscribed(self, hook: dict[str, Any], event: str) -> bool:
        app = self.fake.state.apps.get(hook["app"])
        return (hook["isActive"] and event in hook["asyncEvents"] and app is not None and app["isActive"]
                and not app["removed"] and ORDER_EVENT_PERMISSION in app["permissions"])

    def _payload(self, hook: dict[str, Any], root: dict[str, Any]) -> bytes:
        result = execute(self.fake.schema, parse(hook["query"]), root_value=root)
        if result.errors:
            raise AssertionError(f"subscription of webhook {hook['id']} failed: {result.errors[0].message}")
        return json.dumps(result.data["event"]).encode()

    def _new_delivery(self, hook: dict[str, Any], event: str, order_id: str, payload: bytes) -> str:
        delivery_id = self.fake.next_id("EventDelivery")
        self.fake.state.deliveries.setdefault(hook["id"], []).append({
            "id": delivery_id, "createdAt": now_iso(), "status": "PENDING", "eventType": event, "attempts": [],
            "payload": payload, "webhook": hook["id"], "order": order_id, "retries": 0})
        return delivery_id

    # ---- the Celery side: due tries, one thread pool ------------------------------------------------------
    def _schedule(self, delivery_id: str, delay_seconds: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay_seconds * self.scale, next(self._seq), delivery_id))
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    self._wake.wait(timeout=(self._due[0][0] - time.monotonic()) if self._due else None)
                if self._stopped:
                    return
                _, _, delivery_id = heapq.heappop(self._due)
            self._pool.submit(self._try, delivery_id)

    def find(self, delivery_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(delivery, its webhook) while both exist."""
        with self.fake._lock:
            for hook_id, deliveries in self.fake.state.deliveries.items():
                for delivery in deliveries:
                    if delivery["id"] == delivery_id and hook_id in self.fake.state.webhooks:
                        return delivery, self.fake.state.webhooks[hook_id]
        return None

    def _try(self, delivery_id: str) -> None:
        found = self.find(delivery_id)
        if found is None:
            return
        delivery, hook = found
        if not self._subscribed(hook, delivery["eventType"]):
            with self.fake._lock:
                delivery["status"] = "FAILED"  # the webhook or app was disabled meanwhile
            return
        code, body = self._send(hook, delivery)
        with self.fake._lock:
            self.sent.append({"delivery": delivery_id, "event": delivery["eventType"], "order": delivery["order"],
                              "status": code})
            success = code is not None and 200 <= code < 300
            delivery["attempts"].append({
                "id": self.fake.next_id("EventDeliveryAttempt"), "createdAt": now_iso(),
                "status": "SUCCESS" if success else "FAILED", "responseStatusCode": code,
                "response": body[: self.fake.RESPONSE_SIZE_LIMIT]
                + ("..." if len(body) > self.fake.RESPONSE_SIZE_LIMIT else "")})
            if success:
                self.fake.state.deliveries[hook["id"]].remove(delivery)  # clear_successful_delivery
            elif (code is not None and 300 <= code < 500) or delivery["retries"] >= MAX_RETRIES:
                delivery["status"] = "FAILED"
            else:
                delay = RETRY_BACKOFF_SECONDS * 2 ** delivery["retries"]
                delivery["retries"] += 1
                self._schedule(delivery_id, delay)
        with self._wake:
            self._wake.notify_all()  # tests waiting on a delivery's outcome look again

    def _send(self, hook: dict[str, Any], delivery: dict[str, Any]) -> tuple[int | None, str]:
        body = delivery["payload"]
        headers = {"Content-Type": "application/json", "Saleor-Event": delivery["eventType"].lower(),
                   "Saleor-Domain": self.domain, "Saleor-Api-Url": self.fake.api_url,
                   "Saleor-Signature": self.signer.sign(body), **hook["customHeaders"]}
        try:
            response = self._http.post(hook["targetUrl"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text

    # ---- GraphQL: eventDeliveryRetry and orders -----------------------------------------------------------
    def retry(self, delivery_id: str) -> dict[str, Any] | None:
        """eventDeliveryRetry: queue the delivery again with a fresh retry budget; None when it is gone."""
        found = self.find(delivery_id)
        if found is None or self.fake.state.apps.get(found[1]["app"], {}).get("removed", True):
            return None
        with self.fake._lock:
            found[0]["retries"] = 0
        self._schedule(delivery_id, 0.0)
        return found[0]

    def orders_connection(self, *, first: int | None, last: int | None, after: str | None,
                          sort_by: dict[str, Any] | None, filter: dict[str, Any] | None) -> dict[str, Any]:
        if first is None and last is None:
            raise GraphQLError("You must provide a `first` or `last` value to properly paginate the `orders` "
                               "connection.")
        if (first or 0) > MAX_PAGE or (last or 0) > MAX_PAGE:
            raise GraphQLError(f"Requesting {first or last} records on the `orders` connection exceeds the "
                               f"`{'first' if first else 'last'}` limit of {MAX_PAGE} records.")
        if last is not None:
            raise GraphQLError("the fake serves `first`/`after` pages only")
        unknown = sorted(set(filter or {}) - {"updatedAt"})
        if unknown:
            raise GraphQLError(f"the fake does not implement the orders filter {unknown}")
        field = (sort_by or {}).get("field", "NUMBER")
        if field not in _SORT_KEYS:
            raise GraphQLError(f"the fake does not implement sorting orders by {field}")
        span = (filter or {}).get("updatedAt") or {}
        nodes = [o for o in self.orders.values()
                 if (span.get("gte") is None or _when(o["updatedAt"]) >= _when(span["gte"]))
                 and (span.get("lte") is None or _when(o["updatedAt"]) <= _when(span["lte"]))]
        descending = (sort_by or {}).get("direction") == "DESC"
        nodes.sort(key=lambda o: _sort_key(o, field), reverse=descending)
        if after is not None:
            mark = _after(after, field)
            nodes = [o for o in nodes if (_sort_key(o, field) < mark if descending else _sort_key(o, field) > mark)]
        page = nodes[:first]
        edges = [{"node": dict(o), "cursor": _cursor(o, field)} for o in page]
        return {"edges": edges, "totalCount": len(nodes),
                "pageInfo": {"hasNextPage": len(nodes) > len(page), "hasPreviousPage": after is not None,
                             "startCursor": edges[0]["cursor"] if edges else None,
                             "endCursor": edges[-1]["cursor"] if edges else None}}

    # ---- what tests wait on ---------------------------------------------------------------------------------
    def wait(self, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake Saleor: timed out after {timeout:g} s waiting for {what}")
            with self._wake:
                self._wake.wait(timeout=0.05)  # woken by every finished try

    def settled(self) -> bool:
        """No try is due or running: every delivery succeeded (and is gone) or is FAILED."""
        with self.fake._lock:
            return all(d["status"] != "PENDING" for ds in self.fake.state.deliveries.values() for d in ds)

    def failed(self) -> list[dict[str, Any]]:
        with self.fake._lock:
            return [d for ds in self.fake.state.deliveries.values() for d in ds if d["status"] == "FAILED"]


def webhook_origin(api_url: str) -> str:
    parts = urlparse(api_url)
    return f"{parts.scheme}://{parts.netloc}"
