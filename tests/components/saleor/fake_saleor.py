"""A local Saleor for the operations the provider uses: an HTTP GraphQL server on loopback.

Every incoming document is parsed and validated with graphql-core against the schema of the Saleor version
the fake plays (3.20, 3.21 or 3.23, read through `infra.schemas`) and executed against it, so a field or
argument Saleor does not have fails here as it would there. Requests are served concurrently (one thread
each), as Saleor's workers do. Where the provider meets Saleor, the fake follows Saleor 3.20-3.23's source:

Staff login throttle, `saleor/account/throttling.py` (`authenticate_with_throttling`, called by
`saleor/graphql/account/mutations/authentication/create_token.py`), keyed by the client IP:
- every `tokenCreate` first does `cache.add("login:block:ip:<ip>", now + 1 s, timeout=MIN_DELAY=1 s)`; if the
  key already exists (another login from this address in progress, or a delay after failures) the answer is
  HTTP 200 with `errors: [{field: null, code: LOGIN_ATTEMPT_DELAYED, message: "Logging has been suspended
  till <time> due to too many logging attempts originating from the same IP address."}]`; nothing is counted;
- the password check runs while that key is held (`login_seconds` here stands for the hashing time);
- success deletes the block key and both failure counters;
- a failure increments `login:fail:ip:<ip>` and, for an existing user, `login:fail:ip:<ip>:user:<pk>`
  (each expires ATTEMPT_COUNTER_EXPIRE_TIME=7200 s after it is created), then blocks the address for
  `max(2**(ceil(ip_attempts/10)-1) if ip_attempts < 100 else 3600, 2**(ip_user_attempts-1) if
  ip_user_attempts < 10 else 3600, 1)` seconds, answered as INVALID_CREDENTIALS on field `email`.

Tokens, `saleor/core/jwt.py` and `saleor/settings.py`: the access JWT lives JWT_TTL_ACCESS (5 minutes; tests
shorten `access_ttl_seconds`), the refresh JWT JWT_TTL_REFRESH (30 days). A request whose Authorization
token has expired is answered HTTP 200 with a top-level error `Signature has expired`,
`extensions.exception.code: ExpiredSignatureError` (`saleor/graphql/views.py` handles PyJWTError,
`saleor/graphql/utils/__init__.py:format_error` names the exception class), and the field null; a token made
before the user's JWT key changed gets `InvalidTokenError`. `tokenRefresh(refreshToken)`
(`.../authentication/refresh_token.py`, `utils.py:get_payload`) returns a new access token and is not
throttled; a bad refresh token is `errors[{field: refreshToken, code: JWT_SIGNATURE_EXPIRED |
JWT_INVALID_TOKEN | JWT_DECODE_ERROR}]`.

Also: appDelete is a soft delete (app(id) reads null afterwards), custom headers read back lower-cased and as
"{}" when empty, webhookDelete answers DELETE_FAILED while a delivery is in flight, and errors come three
ways (mutation errors[], top-level PermissionDenied, HTTP 400 for invalid documents). It counts requests by
root field and login outcome, tracks how many requests are in flight at once, and injects failures (5xx,
dropped connections) on demand.

Event deliveries (`Webhook.eventDeliveries`, read by tools/verify), `saleor/webhook/transport/utils.py`
(`send_webhook_using_http`, `handle_webhook_retry`, `attempt_update`, `clear_successful_deliveries`) and
`saleor/webhook/transport/asynchronous/transport.py` (`send_webhook_request_async`: retry_backoff=10,
max_retries=5): each try is an EventDeliveryAttempt, PENDING then SUCCESS for a 2xx answer or FAILED otherwise,
with `responseStatusCode` (null when no HTTP answer came; Saleor's IP filter records the response "Invalid IP
address") and `response` cut at EVENT_DELIVERY_ATTEMPT_RESPONSE_SIZE_LIMIT with "..." appended. The delivery
stays PENDING while 5xx/no-answer tries are retried (at most 5 retries), becomes FAILED on a 3xx/4xx answer or
when retries run out, and is deleted once SUCCESS. `record_delivery(webhook_id, answers)` applies these rules;
the connection takes `first` (at most 100, else a top-level error as Saleor's `create_connection_slice`),
`sortBy {field: CREATED_AT, direction}` and `filter {status, eventType}`.

Reusable by end-to-end tests and benchmarks: `FakeSaleor(...).start()`, `.api_url`, `.stop()`, or as a
context manager.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from math import ceil
from typing import Any
from urllib.parse import urlparse

from graphql import (
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)

from components.saleor.schema import load_schema
from tests.components.saleor.fake_saleor_events import SaleorEvents

SCHEMA_VERSION = "3.23"
ALL_STAFF_PERMISSIONS = ("MANAGE_APPS", "MANAGE_ORDERS")
# Roots that touch no stored object: run without the state lock, so logins really overlap.
_UNLOCKED_ROOTS = frozenset({"tokenCreate", "tokenRefresh", "__schema", "__type"})


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def _permission_denied(*permissions: str) -> GraphQLError:
    return GraphQLError(
        "To access this path, you need one of the following permissions: " + ", ".join(permissions),
        extensions={"exception": {"code": "PermissionDenied"}},
    )


def _err(field_name: str | None, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"field": field_name, "code": code, "message": message, **extra}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Request:
    operation: str | None
    roots: list[str]
    status: int
    authenticated: bool
    client: str = ""
    codes: list[str] = field(default_factory=list)


@dataclass
class Failure:
    root: str | None  # None: any request
    kind: str  # http_<status> | disconnect | disconnect_after | permission_denied | drop_auth_token
    remaining: int


@dataclass
class Staff:
    email: str
    password: str
    permissions: tuple[str, ...]
    pk: int = 1


@dataclass
class State:
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: Counter = field(default_factory=Counter)
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # webhook id -> its deliveries


class LoginThrottle:
    """saleor/account/throttling.py over a Django-like cache with per-key expiry (see the module docstring).

    `scale` multiplies every delay (1.0 = Saleor's seconds); `clock` is the time source, which a test may
    replace to step through a lockout without waiting.
    """

    MIN_DELAY = 1
    MAX_DELAY = 3600
    ATTEMPT_COUNTER_EXPIRE_TIME = 7200

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.clock = time.monotonic
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Any, float]] = {}

    # cache.add / get / set / delete / incr, as django.core.cache does them
    def _live(self, key: str) -> Any:
        entry = self._cache.get(key)
        if entry is None or entry[1] <= self.clock():
            self._cache.pop(key, None)
            return None
        return entry[0]

    def _add(self, key: str, value: Any, timeout: float) -> bool:
        if self._live(key) is not None:
            return False
        self._cache[key] = (value, self.clock() + timeout * self.scale)
        return True

    def _set(self, key: str, value: Any, timeout: float) -> None:
        self._cache[key] = (value, self.clock() + timeout * self.scale)

    def _increment(self, key: str) -> int:
        if self._add(key, 1, self.ATTEMPT_COUNTER_EXPIRE_TIME):
            return 1
        value, expires = self._cache[key]
        self._cache[key] = (value + 1, expires)
        return value + 1

    @staticmethod
    def delay(ip_attempts: int, ip_user_attempts: int) -> int:
        ip_delay = 0
        if ip_attempts > 0:
            ip_delay = 2 ** (ceil(ip_attempts / 10) - 1) if ip_attempts < 100 else LoginThrottle.MAX_DELAY
        ip_user_delay = 0
        if ip_user_attempts > 0:
            ip_user_delay = 2 ** (ip_user_attempts - 1) if ip_user_attempts < 10 else LoginThrottle.MAX_DELAY
        return max(ip_delay, ip_user_delay, LoginThrottle.MIN_DELAY)

    def begin(self, ip: str) -> str | None:
        """Block the address before the attempt; the time it is blocked till when it already was."""
        now = datetime.now(UTC)
        with self._lock:
            if self._add(f"login:block:ip:{ip}", now + timedelta(seconds=self.MIN_DELAY), self.MIN_DELAY):
                return None
            return str(self._live(f"login:block:ip:{ip}") or now + timedelta(seconds=self.MIN_DELAY))

    def succeeded(self, ip: str, user_pk: int) -> None:
        with self._lock:
            for key in (f"login:fail:ip:{ip}", f"login:fail:ip:{ip}:user:{user_pk}", f"login:block:ip:{ip}"):
                self._cache.pop(key, None)

    def failed(self, ip: str, user_pk: int | None) -> int:
        """Count the failure and block the address; returns the delay in Saleor's seconds."""
        with self._lock:
            ip_user_attempts = self._increment(f"login:fail:ip:{ip}:user:{user_pk}") if user_pk is not None else 0
            ip_attempts = self._increment(f"login:fail:ip:{ip}")
            delay = self.delay(ip_attempts, ip_user_attempts)
            self._set(f"login:block:ip:{ip}", datetime.now(UTC) + timedelta(seconds=delay), delay)
            return delay


class FakeSaleor:
    """Saleor's GraphQL API for apps, webhooks and staff login, on 127.0.0.1."""

    def __init__(
        self,
        *,
        version: str = SCHEMA_VERSION,
        staff_email: str = "staff@example.com",
        staff_password: str = "staff-password-Xy9!",
        staff_permissions: tuple[str, ...] = ALL_STAFF_PERMISSIONS,
        access_ttl_seconds: float = 300.0,
        refresh_ttl_seconds: float = 30 * 24 * 3600.0,
        login_seconds: float = 0.05,
        latency_seconds: float = 0.0,
        throttle_scale: float = 1.0,
        retry_scale: float = 1.0,
    ) -> None:
        schema = load_schema(version)
        if schema is None:
            raise RuntimeError(f"no Saleor {version} schema: set CMP_SCHEMA_DIR to the directory holding saleor/")
        self.version = version
        self.schema = schema
        self.staff = Staff(staff_email, staff_password, tuple(staff_permissions))
        self.access_ttl_seconds = access_ttl_seconds
        self.refresh_ttl_seconds = refresh_ttl_seconds
        self.login_seconds = login_seconds
        self.latency_seconds = latency_seconds
        self.throttle = LoginThrottle(throttle_scale)
        self.state = State()
        self.requests: list[Request] = []
        self.issued_tokens: set[str] = set()  # access and refresh tokens handed out
        self.app_tokens: list[str] = []
        self.app_token_owner: dict[str, str] = {}  # app auth token -> app id (appTokenDelete removes it)
        self.retry_scale = retry_scale
        self._events: SaleorEvents | None = None
        self.bodies: list[bytes] = []
        self.logins: Counter = Counter()  # tokenCreate outcomes: "ok" or the error code
        self.refreshes: Counter = Counter()  # tokenRefresh outcomes
        self.in_flight = 0
        self.max_in_flight = 0
        self._jwt_key = secrets.token_bytes(32)
        self._user_jwt_key = secrets.token_hex(6)  # Saleor's User.jwt_token_key: changing it revokes tokens
        self._hold: float | None = None  # seconds the next login may be held (hold_next_login)
        self._failures: list[Failure] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> FakeSaleor:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 64
        # stop() waits for serve_forever to look at its shutdown flag, every poll_interval (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-saleor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._events is not None:
            self._events.stop()
            self._events = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSaleor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/graphql/"

    @property
    def origin(self) -> str:
        """Saleor's origin: where its JWKS is (`<origin>/.well-known/jwks.json`)."""
        return self.api_url.removesuffix("/graphql/")

    @property
    def events(self) -> SaleorEvents:
        """Orders, their events and the webhook deliveries they cause (fake_saleor_events.py); made on first use."""
        with self._lock:
            if self._events is None:
                self._events = SaleorEvents(self, scale=self.retry_scale)
            return self._events

    def graphql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        """POST one document to the fake as a client does (with `Authorization: Bearer <token>`); its JSON answer."""
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(self.api_url, json={"query": query, "variables": variables or {}}, headers=headers).json()

    def staff_token(self) -> str:
        """A staff access token, by tokenCreate with the fake's staff credentials."""
        query = "mutation T($e: String!, $p: String!) { tokenCreate(email: $e, password: $p) { token } }"
        return self.graphql(query, {"e": self.staff.email, "p": self.staff.password})["data"]["tokenCreate"]["token"]

    def app_token(self, app_id: str) -> str:
        """The auth token appCreate handed out for `app_id` (Saleor shows it once; the provider keeps it)."""
        with self._lock:
            return next(t for t, owner in self.app_token_owner.items() if owner == app_id)

    def revoke_app_token(self, token: str) -> None:
        """appTokenDelete: from now on the token authenticates nothing."""
        with self._lock:
            self.app_token_owner.pop(token, None)

    # ---- what tests look at and do ------------------------------------------------------------------------
    def count(self, root: str | None = None) -> int:
        """Requests received (all, or those whose document selects `root`)."""
        with self._lock:
            return sum(1 for r in self.requests if root is None or root in r.roots)

    def counts(self) -> dict[str, int]:
        """Requests by root field, plus tokenCreate outcomes (`login:ok`, `login:LOGIN_ATTEMPT_DELAYED`, ...)."""
        with self._lock:
            found = Counter(root for r in self.requests for root in r.roots)
            found.update({f"login:{k}": v for k, v in self.logins.items()})
            found.update({f"refresh:{k}": v for k, v in self.refreshes.items()})
            return dict(found)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bodies.clear()
            self.logins.clear()
            self.refreshes.clear()
            self.max_in_flight = self.in_flight

    def fail_next(self, kind: str, root: str | None = None, times: int = 1) -> None:
        """Inject a failure: http_<status>, disconnect (before executing), disconnect_after (after executing),
        permission_denied, drop_auth_token (appCreate runs but answers without the token)."""
        with self._lock:
            self._failures.append(Failure(root, kind, times))

    def hold_next_login(self, timeout: float = 20.0, refusals: int = 1) -> None:
        """The next login that gets past the throttle takes until `refusals` other logins were refused (or
        `timeout`): a slow password check that concurrent logins are sure to run into."""
        with self._lock:
            self._hold = timeout
            self._refused_event = threading.Event()
            self._refusals_wanted = refusals

    def expire_tokens(self) -> None:
        """Every access token issued so far reads as expired from now on (Saleor's clock passed its exp)."""
        with self._lock:
            self._expired_before = time.time()

    def rotate_user_jwt_key(self) -> None:
        """What a staff password change does in Saleor: every access and refresh token issued so far is invalid."""
        with self._lock:
            self._user_jwt_key = secrets.token_hex(6)

    def deliveries_in_flight(self, webhook_id: str, times: int) -> None:
        """The next `times` webhookDelete calls for this webhook answer DELETE_FAILED."""
        with self._lock:
            self.state.in_flight[webhook_id] = times

    def live_apps(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a for a in self.state.apps.values() if not a["removed"]]

    def live_webhooks(self, app_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                w
                for w in self.state.webhooks.values()
                if (app_id is None or w["app"] == app_id) and not self.state.apps[w["app"]]["removed"]
            ]

    def edit_webhook(self, webhook_id: str, **changes: Any) -> None:
        """An out-of-band edit (as a dashboard user would make); keys are the stored GraphQL field names."""
        with self._lock:
            self.state.webhooks[webhook_id].update(changes)

    def edit_app(self, app_id: str, **changes: Any) -> None:
        with self._lock:
            self.state.apps[app_id].update(changes)

    def delete_webhook_out_of_band(self, webhook_id: str) -> None:
        with self._lock:
            del self.state.webhooks[webhook_id]

    def delete_app_out_of_band(self, app_id: str) -> None:
        with self._lock:
            self.state.apps[app_id]["removed"] = True

    # ---- event deliveries (see the module docstring) -------------------------------------------------------
    RESPONSE_SIZE_LIMIT = 1024  # Saleor's EVENT_DELIVERY_ATTEMPT_RESPONSE_SIZE_LIMIT default
    MAX_RETRIES = 5

    def record_delivery(self, webhook_id: str, answers: list[tuple[int | None, str]], *,
                        event_type: str | None = None, created_at: datetime | None = None) -> str | None:
        """One delivery of `webhook_id`'s event, tried once per answer (HTTP status or None, response body), in
        order, under Saleor's rules; returns its id, or None when it succeeded (Saleor deletes it)."""
        with self._lock:
            hook = self.state.webhooks[webhook_id]
            created = created_at or datetime.now(UTC)
            delivery = {"id": self.next_id("EventDelivery"), "createdAt": created.isoformat(), "status": "PENDING",
                        "eventType": event_type or hook["asyncEvents"][0], "attempts": []}
            for tried, (code, body) in enumerate(answers):
                if delivery["status"] != "PENDING":
                    break
                response = body[: self.RESPONSE_SIZE_LIMIT] + ("..." if len(body) > self.RESPONSE_SIZE_LIMIT else "")
                success = code is not None and 200 <= code < 300
                delivery["attempts"].append({
                    "id": self.next_id("EventDeliveryAttempt"),
                    "createdAt": (created + timedelta(seconds=10 * (2**tried - 1))).isoformat(),
                    "status": "SUCCESS" if success else "FAILED", "responseStatusCode": code, "response": response})
                if success:
                    delivery["status"] = "SUCCESS"
                elif (code is not None and 300 <= code < 500) or tried >= self.MAX_RETRIES:
                    delivery["status"] = "FAILED"
            if delivery["status"] == "SUCCESS":
                return None  # clear_successful_delivery
            self.state.deliveries.setdefault(webhook_id, []).append(delivery)
            return delivery["id"]

    def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.state.deliveries.get(webhook_id, []))

    # ---- tokens ------------------------------------------------------------------------------------------
    _expired_before = 0.0

    def issue(self, kind: str, ttl: float) -> str:
        now = time.time()
        claims = {"iat": now, "exp": now + ttl, "token": self._user_jwt_key, "email": self.staff.email,
                  "type": kind, "jti": secrets.token_hex(8)}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self._jwt_key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        with self._lock:
            self.issued_tokens.add(token)
        return token

    def decode(self, token: str, kind: str) -> tuple[str, str] | None:
        """None when `token` is a valid `kind` token, else (exception class, message) as Saleor's PyJWT raises."""
        try:
            signing_input, signature = token.rsplit(".", 1)
            payload = signing_input.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expected = hmac.new(self._jwt_key, signing_input.encode(), hashlib.sha256).digest()
            valid = hmac.compare_digest(_b64(expected), signature)
        except (ValueError, IndexError):
            return ("DecodeError", "Error decoding signature")
        if not valid:
            return ("InvalidSignatureError", "Signature verification failed")
        if claims["exp"] <= time.time() or (kind == "access" and claims["iat"] <= self._expired_before):
            return ("ExpiredSignatureError", "Signature has expired")
        if claims.get("type") != kind or claims.get("token") != self._user_jwt_key:
            return ("InvalidTokenError", "Invalid token. Create new one by using tokenCreate mutation.")
        return None

    def _login_hold(self) -> None:
        with self._lock:
            hold, self._hold = self._hold, None
        if hold is None:
            time.sleep(self.login_seconds)
            return
        assert self._refused_event is not None
        self._refused_event.wait(hold)

    _refused_event: threading.Event | None = None
    _refusals_wanted = 0

    def _note_refusal(self) -> None:
        with self._lock:
            self._refusals_wanted -= 1
            if self._refused_event is not None and self._refusals_wanted <= 0:
                self._refused_event.set()

    # ---- request handling ---------------------------------------------------------------------------------
    def _take_failure(self, roots: list[str]) -> str | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and (failure.root is None or failure.root in roots):
                    failure.remaining -= 1
                    return failure.kind
        return None

    def handle(
        self, body: bytes, authorization: str | None, client: str = "127.0.0.1"
    ) -> tuple[int, dict[str, Any] | None, str | None]:
        """(status, JSON answer or None, failure kind); the fake's whole GraphQL endpoint."""
        try:
            payload = json.loads(body)
            document = parse(payload["query"])
        except GraphQLSyntaxError as exc:
            return self._record(None, [], 400, authorization, {"errors": [_doc_error(exc.message)]})
        except (ValueError, KeyError, TypeError):
            return self._record(None, [], 400, authorization, {"errors": [_doc_error("Must provide a query")]})
        operation = next((d for d in document.definitions if isinstance(d, OperationDefinitionNode)), None)
        roots = [s.name.value for s in operation.selection_set.selections] if operation else []
        name = operation.name.value if operation and operation.name else None
        errors = validate(self.schema, document)
        if errors:
            return self._record(name, roots, 400, authorization, {"errors": [_doc_error(e.message) for e in errors]})
        kind = self._take_failure(roots)
        if kind and kind.startswith("http_"):
            return self._record(name, roots, int(kind[5:]), authorization, None, kind)
        if kind == "disconnect":
            return self._record(name, roots, 0, authorization, None, kind)
        context: dict[str, Any] = {"client": client, "codes": []}
        resolvers = _Resolvers(self, authorization, forbid=kind == "permission_denied")
        lock = contextlib.nullcontext() if set(roots) <= _UNLOCKED_ROOTS else self._lock
        with lock:
            result = execute(
                self.schema,
                document,
                root_value=resolvers,
                context_value=context,
                variable_values=payload.get("variables") or {},
            )
        answer = result.formatted
        if kind == "drop_auth_token" and (answer.get("data") or {}).get("appCreate"):
            answer["data"]["appCreate"]["authToken"] = None  # the app exists, but its token was lost
        status = 400 if result.data is None and result.errors else 200
        return self._record(name, roots, status, authorization, answer, kind, client, context["codes"])

    def _record(self, name, roots, status, authorization, answer, kind=None, client="", codes=()):
        with self._lock:
            self.requests.append(Request(name, roots, status, bool(authorization), client, list(codes)))
        return status, answer, kind

    def next_id(self, type_name: str) -> str:
        return global_id(type_name, next(self._ids))


def _doc_error(message: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"exception": {"code": "GraphQLError"}}}


class _Resolvers:
    """Root fields, resolved the way Saleor's do for the parts the provider uses."""

    def __init__(self, fake: FakeSaleor, authorization: str | None, *, forbid: bool) -> None:
        self.fake, self.forbid = fake, forbid
        self.state = fake.state
        self.user: Staff | None = None
        self.caller_app: dict[str, Any] | None = None  # not `app`: that name is the root field's resolver
        self.token_error: tuple[str, str] | None = None
        token = authorization[7:] if authorization and authorization.startswith("Bearer ") else None
        if token in fake.app_token_owner:
            # saleor/graphql/app/dataloaders.py (AppByTokenLoader): an app token authenticates an active, not
            # removed app only; otherwise the request runs anonymously. A token that is no app's (revoked) is
            # decoded as a staff JWT (saleor/graphql/context.py), which fails.
            app = fake.state.apps.get(fake.app_token_owner[token])
            self.caller_app = app if app is not None and app["isActive"] and not app["removed"] else None
        elif token:
            self.token_error = fake.decode(token, "access")
            self.user = fake.staff if self.token_error is None else None

    def _require(self, permission: str = "MANAGE_APPS") -> None:
        if self.caller_app is not None:
            if self.forbid or permission not in self.caller_app["permissions"]:
                raise _permission_denied(permission)
            return
        if self.token_error is not None:  # Saleor loads the user lazily: the JWT error surfaces here
            code, message = self.token_error
            raise GraphQLError(message, extensions={"exception": {"code": code}})
        if self.forbid or self.user is None or permission not in self.user.permissions:
            raise _permission_denied(permission)

    # ---- views of stored objects -------------------------------------------------------------------------
    def _webhook_view(self, hook: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": hook["id"],
            "name": hook["name"],
            "targetUrl": hook["targetUrl"],
            "isActive": hook["isActive"],
            "asyncEvents": [{"name": e.lower(), "eventType": e} for e in hook["asyncEvents"]],
            "subscriptionQuery": hook["query"],
            # Saleor's read-back quirk: lower-cased keys, "{}" when there are none.
            "customHeaders": json.dumps({k.lower(): v for k, v in hook["customHeaders"].items()}),
            "eventDeliveries": lambda _info, **args: self._deliveries_connection(hook["id"], **args),
        }

    @staticmethod
    def _connection(nodes: list[dict[str, Any]], first: int | None, sort_by: dict[str, Any] | None,
                    field_name: str) -> dict[str, Any]:
        if first is not None and first > 100:
            raise GraphQLError(f"Requesting {first} records on the `{field_name}` connection exceeds the `first` "
                               "limit of 100 records.", extensions={"exception": {"code": "GraphQLError"}})
        nodes = sorted(nodes, key=lambda n: n["createdAt"],
                       reverse=bool(sort_by) and sort_by.get("direction") == "DESC")
        page = nodes[:first] if first is not None else nodes
        return {"edges": [{"node": n, "cursor": n["id"]} for n in page],
                "pageInfo": {"hasNextPage": len(page) < len(nodes), "hasPreviousPage": False},
                "totalCount": len(nodes)}

    def _deliveries_connection(self, webhook_id: str, first: int | None = None, sortBy: dict[str, Any] | None = None,
                               filter: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        found = []
        for stored in self.state.deliveries.get(webhook_id, []):
            if filter and any(filter.get(k) not in (None, stored[k]) for k in ("status", "eventType")):
                continue
            attempts = stored["attempts"]
            found.append({**stored, "attempts": lambda _info, a=attempts, **args: self._connection(
                a, args.get("first"), args.get("sortBy"), "attempts")})
        return self._connection(found, first, sortBy, "eventDeliveries")

    def _app_view(self, app: dict[str, Any]) -> dict[str, Any]:
        hooks = [h for h in self.state.webhooks.values() if h["app"] == app["id"]]
        return {
            "id": app["id"],
            "name": app["name"],
            "identifier": app["identifier"],
            "isActive": app["isActive"],
            "permissions": [{"code": p, "name": p.replace("_", " ").title()} for p in app["permissions"]],
            "webhooks": [self._webhook_view(h) for h in hooks],
        }

    def _live_app(self, app_id: str | None) -> dict[str, Any] | None:
        app = self.state.apps.get(app_id or "")
        return app if app is not None and not app["removed"] else None

    # ---- Query -----------------------------------------------------------------------------------------------
    def app(self, _info, id: str | None = None) -> dict[str, Any] | None:
        self._require()
        app = self._live_app(id)
        return self._app_view(app) if app else None  # soft-deleted apps read as null

    def orders(self, _info, first: int | None = None, last: int | None = None, after: str | None = None,
               sortBy: dict[str, Any] | None = None, filter: dict[str, Any] | None = None,
               **unsupported: Any) -> dict[str, Any]:
        self._require("MANAGE_ORDERS")
        if any(v is not None for v in unsupported.values()):
            raise GraphQLError(f"the fake does not implement orders({', '.join(sorted(unsupported))})")
        return self.fake.events.orders_connection(first=first, last=last, after=after, sort_by=sortBy,
                                                  filter=filter)

    def eventDeliveryRetry(self, _info, id: str) -> dict[str, Any]:
        self._require("MANAGE_APPS")
        delivery = self.fake.events.retry(id)
        if delivery is None:
            return {"delivery": None, "errors": [_err("id", "NOT_FOUND", f"Couldn't resolve id: {id}.")]}
        return {"delivery": {k: delivery[k] for k in ("id", "createdAt", "status", "eventType")}, "errors": []}

    # ---- Mutation: staff login and token refresh -----------------------------------------------------------
    def _user_payload(self) -> dict[str, Any]:
        staff = self.fake.staff
        return {"email": staff.email, "userPermissions": [{"code": p, "name": p} for p in staff.permissions]}

    def tokenCreate(self, info, email: str, password: str, audience: str | None = None) -> dict[str, Any]:
        fake, ip = self.fake, info.context["client"]
        till = fake.throttle.begin(ip)
        if till is not None:
            info.context["codes"].append("LOGIN_ATTEMPT_DELAYED")
            with fake._lock:
                fake.logins["LOGIN_ATTEMPT_DELAYED"] += 1
            fake._note_refusal()
            message = (f"Logging has been suspended till {till} due to too many logging attempts originating "
                       "from the same IP address.")
            return {"token": None, "refreshToken": None, "user": None,
                    "errors": [_err(None, "LOGIN_ATTEMPT_DELAYED", message)]}
        fake._login_hold()  # the password hash check, with the address blocked meanwhile
        staff = fake.staff
        known = email == staff.email
        if known and password == staff.password:
            fake.throttle.succeeded(ip, staff.pk)
            info.context["codes"].append("ok")
            with fake._lock:
                fake.logins["ok"] += 1
            return {
                "token": fake.issue("access", fake.access_ttl_seconds),
                "refreshToken": fake.issue("refresh", fake.refresh_ttl_seconds),
                "user": self._user_payload(),
                "errors": [],
            }
        fake.throttle.failed(ip, staff.pk if known else None)
        info.context["codes"].append("INVALID_CREDENTIALS")
        with fake._lock:
            fake.logins["INVALID_CREDENTIALS"] += 1
        return {"token": None, "refreshToken": None, "user": None,
                "errors": [_err("email", "INVALID_CREDENTIALS", "Please, enter valid credentials")]}

    def tokenRefresh(self, info, refreshToken: str | None = None, csrfToken: str | None = None) -> dict[str, Any]:
        fake = self.fake
        problem = fake.decode(refreshToken, "refresh") if refreshToken else ("", "Missing refreshToken")
        if problem is None:
            with fake._lock:
                fake.refreshes["ok"] += 1
            info.context["codes"].append("ok")
            return {"token": fake.issue("access", fake.access_ttl_seconds), "user": self._user_payload(),
                    "errors": []}
        code = {
            "ExpiredSignatureError": "JWT_SIGNATURE_EXPIRED",
            "DecodeError": "JWT_DECODE_ERROR",
            "": "JWT_MISSING_TOKEN",
        }.get(problem[0], "JWT_INVALID_TOKEN")
        with fake._lock:
            fake.refreshes[code] += 1
        info.context["codes"].append(code)
        return {"token": None, "user": None, "errors": [_err("refreshToken", code, problem[1])]}

    # ---- Mutation: apps ---------------------------------------------------------------------------------------
    def _app_input_errors(self, data: dict[str, Any], *, creating: bool) -> list[dict[str, Any]]:
        if creating and not data.get("name"):
            return [_err("name", "REQUIRED", "This field is required.")]
        missing = [p for p in data.get("permissions") or [] if p not in self.user.permissions]
        if missing:
            return [
                _err("permissions", "OUT_OF_SCOPE_PERMISSION", "You can't add permission that you don't have.",
                     permissions=missing)
            ]
        return []

    def appCreate(self, _info, input: dict[str, Any]) -> dict[str, Any]:
        self._require()
        errors = self._app_input_errors(input, creating=True)
        if errors:
            return {"authToken": None, "app": None, "errors": errors}
        app_id = self.fake.next_id("App")
        token = secrets.token_urlsafe(30)
        self.fake.app_tokens.append(token)
        self.fake.app_token_owner[token] = app_id
        self.state.apps[app_id] = {
            "id": app_id,
            "name": input["name"],
            "identifier": input.get("identifier"),
            "isActive": True,
            "permissions": list(input.get("permissions") or []),
            "removed": False,
        }
        return {"authToken": token, "app": self._app_view(self.state.apps[app_id]), "errors": []}

    def appUpdate(self, _info, id: str, input: dict[str, Any]) -> dict[str, Any]:
        self._require()
        app = self._live_app(id)
        if app is None:
            return {"app": None, "errors": [_err("id", "NOT_FOUND", f"Couldn't resolve to a node: {id}")]}
        errors = self._app_input_errors(input, creating=False)
        if errors:
            return {"app": None, "errors": errors}
        for key in ("name", "identifier", "permissions"):
            if key in input:
                app[key] = input[key]
        return {"app": self._app_view(app), "errors": []}

    def appDelete(self, _info, id: str) -> dict[str, Any]:
        self._require()
        app = self._live_app(id)
        if app is None:
            return {"app": None, "errors": [_err("id", "NOT_FOUND", f"Couldn't resolve to a node: {id}")]}
        app["removed"] = True  # soft delete
        return {"app": {"id": id}, "errors": []}

    # ---- Mutation: webhooks -------------------------------------------------------------------------------
    def _webhook_errors(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        errors = []
        if "targetUrl" in data:
            parsed = urlparse(data["targetUrl"] or "")
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                errors.append(_err("targetUrl", "INVALID", "Enter a valid URL."))
        if "app" in data and self._live_app(data["app"]) is None:
            errors.append(_err("app", "NOT_FOUND", f"Couldn't resolve to a node: {data['app']}"))
        if data.get("query") is not None:
            errors += self._query_errors(data["query"])
        if "customHeaders" in data:
            errors += self._header_errors(data["customHeaders"])
        return errors

    def _query_errors(self, query: str) -> list[dict[str, Any]]:
        try:
            ast = parse(query)
        except GraphQLSyntaxError as exc:
            return [_err("query", "SYNTAX", exc.message)]
        problems = validate(self.fake.schema, ast)
        if problems:
            return [_err("query", "SYNTAX", problems[0].message)]
        ops = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
        if not ops or ops[0].operation != OperationType.SUBSCRIPTION:
            return [_err("query", "MISSING_SUBSCRIPTION", "Can't find a subscription in the query.")]
        return []

    @staticmethod
    def _header_errors(raw: str | None) -> list[dict[str, Any]]:
        try:
            headers = json.loads(raw) if raw else {}
        except ValueError:
            return [_err("customHeaders", "INVALID_CUSTOM_HEADERS", "Custom headers must be a JSON object.")]
        if len(headers) > 5:
            return [_err("customHeaders", "INVALID_CUSTOM_HEADERS", "Too many headers, max 5.")]
        bad = [k for k in headers if not k.lower().startswith(("x-", "authorization"))]
        if bad:
            return [_err("customHeaders", "INVALID_CUSTOM_HEADERS", f'"{bad[0]}" does not match allowed key pattern')]
        return []

    def webhookCreate(self, _info, input: dict[str, Any]) -> dict[str, Any]:
        self._require()
        errors = self._webhook_errors({"targetUrl": input.get("targetUrl"), **input})
        if not input.get("asyncEvents") and not input.get("syncEvents"):
            errors.append(_err("asyncEvents", "MISSING_EVENT", "At least one event is required."))
        if errors:
            return {"webhook": None, "errors": errors}
        webhook_id = self.fake.next_id("Webhook")
        self.state.webhooks[webhook_id] = {
            "id": webhook_id,
            "app": input["app"],
            "name": input.get("name"),
            "targetUrl": input["targetUrl"],
            "isActive": input.get("isActive", True),
            "asyncEvents": list(input.get("asyncEvents") or []),
            "query": input.get("query"),
            "customHeaders": {k.lower(): v for k, v in json.loads(input.get("customHeaders") or "{}").items()},
            "secretKey": input.get("secretKey"),
        }
        return {"webhook": self._webhook_view(self.state.webhooks[webhook_id]), "errors": []}

    def _live_webhook(self, webhook_id: str) -> dict[str, Any] | None:
        hook = self.state.webhooks.get(webhook_id)
        return hook if hook is not None and self._live_app(hook["app"]) is not None else None

    def webhookUpdate(self, _info, id: str, input: dict[str, Any]) -> dict[str, Any]:
        self._require()
        hook = self._live_webhook(id)
        if hook is None:
            return {"webhook": None, "errors": [_err("id", "NOT_FOUND", f"Couldn't resolve to a node: {id}")]}
        errors = self._webhook_errors(input)
        if errors:
            return {"webhook": None, "errors": errors}
        for key in ("name", "targetUrl", "isActive", "asyncEvents", "query", "secretKey", "app"):
            if key in input:
                hook[key] = input[key]
        if "customHeaders" in input:
            hook["customHeaders"] = {k.lower(): v for k, v in json.loads(input["customHeaders"] or "{}").items()}
        return {"webhook": self._webhook_view(hook), "errors": []}

    def webhookDelete(self, _info, id: str) -> dict[str, Any]:
        self._require()
        hook = self._live_webhook(id)
        if hook is None:
            return {"webhook": None, "errors": [_err("id", "NOT_FOUND", f"Couldn't resolve to a node: {id}")]}
        hook["isActive"] = False  # Saleor deactivates first, then deletes
        if self.state.in_flight[id] > 0:
            self.state.in_flight[id] -= 1
            return {
                "webhook": None,
                "errors": [_err(None, "DELETE_FAILED", "Webhook could not be deleted: delivery in progress.")],
            }
        del self.state.webhooks[id]
        return {"webhook": {"id": id}, "errors": []}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeSaleor

    def log_message(self, *_args: Any) -> None:  # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, delayed ACKs add ~40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if self.path == "/.well-known/jwks.json":
            self._send(200, json.dumps(self.fake.events.signer.jwks()).encode(), {"Content-Type": "application/json"})
            return
        self._send(404, b"Not Found")

    def do_POST(self) -> None:
        if self.path == "/graphql":
            self._send(301, b"", {"Location": "/graphql/"})  # Django's APPEND_SLASH, as Saleor answers
            return
        if self.path != "/graphql/":
            self._send(404, b"Not Found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        fake = self.fake
        with fake._lock:
            fake.bodies.append(body)
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            if fake.latency_seconds:
                time.sleep(fake.latency_seconds)
            status, answer, kind = fake.handle(body, self.headers.get("Authorization"), self.client_address[0])
        finally:
            with fake._lock:
                fake.in_flight -= 1
        if kind in ("disconnect", "disconnect_after"):
            self.close_connection = True
            return
        if answer is None:
            self._send(status, b"Internal Server Error")
            return
        self._send(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
