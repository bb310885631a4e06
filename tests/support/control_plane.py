"""A local fake of the control-plane contract in docs/contracts.md (the real CP is outside this project).

It verifies each caller's service JWT (HS256, ``iss=cmp-<service>``, ``aud=cmp-control-plane``, lifetime at most
5 minutes) against the secret registered for that issuer, keeps instances, policies and billing in memory, logs
every call, and can fail on purpose: ``fail_next``, ``fail_rate``, ``delay_seconds``, ``hold`` / ``release``
(calls arriving meanwhile stay unanswered until the release), and ``go_down`` / ``come_up``, which really close
and reopen the listening socket.

Instance idempotency: ``POST /instances`` with the same ``Idempotency-Key`` and the same order line
(offering_version_id, plan_id) returns the instance made the first time (200); a new line under the same
order key makes a new instance (201). ``POST /instances/cancel`` cancels every live instance of the order.

``caller_keys`` signs the tokens runtimes present to the connector gateway; the fake serves their JWKS and a
client-credentials token endpoint (tests/support/caller_keys.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.support import servers
from tests.support.caller_keys import PUBLIC_PATHS, CallerKeyring, add_authorization_server_routes
from tests.support.net import free_port

AUDIENCE = "cmp-control-plane"
MAX_TOKEN_LIFETIME_S = 300


@dataclass
class Call:
    method: str
    path: str
    status: int
    issuer: str | None
    idempotency_key: str | None
    body: Any
    at: float = field(default_factory=time.monotonic)
    traceparent: str | None = None  # W3C trace context the caller sent (the services' traces)


@dataclass
class Instance:
    instance_id: str
    order_id: str
    order_number: str
    user_email: str
    channel: str
    offering_version_id: str
    plan_id: str
    quantity: int
    status: str = "active"
    credits: int = 100


class ControlPlaneFake:
    def __init__(self, issuer_secrets: dict[str, str] | None = None) -> None:
        self.issuer_secrets: dict[str, str] = dict(issuer_secrets or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.caller_keys = CallerKeyring(issuer=self.url)  # signs caller tokens; its JWKS is public
        self.calls: list[Call] = []
        self.instances: dict[str, Instance] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.authorizations: dict[str, dict[str, Any]] = {}
        self.delay_seconds = 0.0
        self._open = asyncio.Event()  # cleared by hold(): calls wait at the door until release() sets it
        self._open.set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the serving thread's loop, once a call came in
        self._ids = itertools.count(1)
        self._replays: dict[tuple[str, str, str], str] = {}
        self._cancels: dict[str, list[str]] = {}
        self._fail_next: list[int] = []
        self._fail_rate = 0.0
        self._fail_rate_status = 503
        self._rng = random.Random(7)
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # ---- set-up -------------------------------------------------------------------------------------------
    def add_issuer(self, issuer: str, secret: str) -> None:
        self.issuer_secrets[issuer] = secret

    def set_policy(self, org: str, project: str, bindings: list[dict[str, Any]], ttl_seconds: int = 60) -> None:
        """bindings: [{"binding": "support", "connector": "zendesk", "tools": ["zendesk.create_ticket"]}]."""
        self.policies[(org, project)] = {"bindings": bindings, "ttl_seconds": ttl_seconds}

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail_next.extend([status] * count)

    def fail_rate(self, rate: float, status: int = 503, seed: int = 7) -> None:
        """Fail a share of calls (0..1) with ``status``, deterministically for a given seed."""
        with self._lock:
            self._fail_rate = rate
            self._fail_rate_status = status
            self._rng = random.Random(seed)

    # ---- queries for assertions -----------------------------------------------------------------------------
    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path == path]

    def instances_for_order(self, order_id: str, *, status: str | None = None) -> list[Instance]:
        return [
            i for i in self.instances.values() if i.order_id == order_id and (status is None or i.status == status)
        ]

    # ---- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> ControlPlaneFake:
        import uvicorn

        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="control-plane-fake", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"control-plane fake did not start on port {self.port}")
            time.sleep(0.02)
        servers.announce(self, "control-plane fake (in-process; calls recorded in .calls)", self.url, None)
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Stop serving; ``wait=False`` only asks uvicorn to stop (nothing waits on this fake's shutdown)."""
        if self._server is not None:
            self._server.should_exit = True
            if wait and self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None

    def go_down(self) -> None:
        """Close the listening socket: callers see connection refused until ``come_up``."""
        self.stop()

    def come_up(self) -> None:
        self.start()

    def hold(self) -> None:
        """Answer nothing until ``release``: a caller's request stays in flight (a slow or stuck control plane)."""
        self._in_server_loop(self._open.clear)

    def release(self) -> None:
        self._in_server_loop(self._open.set)

    def _in_server_loop(self, change: Callable[[], None]) -> None:
        """The gate belongs to the serving thread's loop: change it there (before any call, directly)."""
        if self._loop is None or self._loop.is_closed():
            change()
        else:
            self._loop.call_soon_threadsafe(change)

    def __enter__(self) -> ControlPlaneFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(wait=False)

    # ---- the contract -------------------------------------------------------------------------------------
    def _verify(self, request: Request) -> tuple[str | None, JSONResponse | None]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None, JSONResponse({"detail": "missing bearer token"}, status_code=401)
        token = header.removeprefix("Bearer ")
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            secret = self.issuer_secrets.get(issuer or "")
            if secret is None:
                return issuer, JSONResponse({"detail": f"unknown issuer {issuer!r}"}, status_code=401)
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], audience=AUDIENCE, options={"require": ["exp", "iss"]}
            )
        except jwt.PyJWTError as exc:
            return None, JSONResponse({"detail": f"invalid token: {exc}"}, status_code=401)
        lifetime = claims["exp"] - claims.get("iat", time.time())
        if lifetime > MAX_TOKEN_LIFETIME_S + 5:
            return issuer, JSONResponse({"detail": "token lifetime exceeds 5 minutes"}, status_code=401)
        return issuer, None

    def _injected_failure(self) -> int | None:
        with self._lock:
            if self._fail_next:
                return self._fail_next.pop(0)
            if self._fail_rate and self._rng.random() < self._fail_rate:
                return self._fail_rate_status
        return None

    def _build_app(self) -> FastAPI:
        app = FastAPI()
        app.middleware("http")(self._gate)
        app.add_api_route("/connectors/policy", self._policy, methods=["GET"])
        app.add_api_route("/instances", self._create_instance, methods=["POST"])
        app.add_api_route("/instances/cancel", self._cancel, methods=["POST"])
        app.add_api_route("/billing/authorize", self._authorize, methods=["POST"])
        app.add_api_route("/billing/settle", self._settle, methods=["POST"])
        app.add_api_route("/instances/{instance_id}/entitlements", self._entitlements, methods=["GET"])
        add_authorization_server_routes(app, self.caller_keys)
        return app

    # ---- the routes -----------------------------------------------------------------------------------------
    async def _gate(self, request: Request, call_next: Callable):
        """Every call: the optional delay, the service JWT (not on the public key and token paths), an injected
        failure, then the route; the call is recorded with its answer."""
        raw = await request.body()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        self._loop = asyncio.get_running_loop()
        await self._open.wait()  # held: the caller's request stays in flight, unanswered
        issuer, response = None, None
        if request.url.path not in PUBLIC_PATHS:  # keys and token endpoint: no service JWT, no injected failure
            issuer, response = self._verify(request)
            if response is None and (status := self._injected_failure()) is not None:
                response = JSONResponse({"detail": "injected failure"}, status_code=status)
        if response is None:
            request.state.issuer = issuer
            response = await call_next(request)
        call = Call(request.method, request.url.path, response.status_code, issuer,
                    request.headers.get("idempotency-key"), _recorded_body(raw),
                    traceparent=request.headers.get("traceparent"))
        self.calls.append(call)
        return response

    async def _policy(self, org: str, project: str):
        return self.policies.get((org, project), {"bindings": [], "ttl_seconds": 60})

    async def _create_instance(self, request: Request):
        key = request.headers.get("idempotency-key")
        body = await request.json()
        missing = [k for k in ("order_id", "offering_version_id", "plan_id", "quantity") if k not in body]
        if not key:
            return JSONResponse({"detail": "Idempotency-Key header is required"}, status_code=400)
        if missing:
            return JSONResponse({"detail": f"missing fields: {', '.join(missing)}"}, status_code=422)
        replay_id = (key, body["offering_version_id"], body["plan_id"])
        with self._lock:
            existing = self._replays.get(replay_id)
            if existing:
                instance = self.instances[existing]
                return JSONResponse({"instance_id": instance.instance_id, "status": instance.status})
            instance = Instance(
                instance_id=f"inst_{next(self._ids)}",
                order_id=str(body["order_id"]),
                order_number=str(body.get("order_number", "")),
                user_email=str(body.get("user_email", "")),
                channel=str(body.get("channel", "")),
                offering_version_id=body["offering_version_id"],
                plan_id=body["plan_id"],
                quantity=int(body["quantity"]),
            )
            self.instances[instance.instance_id] = instance
            self._replays[replay_id] = instance.instance_id
        return JSONResponse({"instance_id": instance.instance_id, "status": instance.status}, status_code=201)

    async def _cancel(self, request: Request):
        key = request.headers.get("idempotency-key")
        body = await request.json()
        if "order_id" not in body:
            return JSONResponse({"detail": "missing field: order_id"}, status_code=422)
        with self._lock:
            if key and key in self._cancels:
                return {"cancelled": self._cancels[key]}
            cancelled = []
            for instance in self.instances_for_order(str(body["order_id"])):
                if instance.status != "cancelled":
                    instance.status = "cancelled"
                    cancelled.append(instance.instance_id)
            if key:
                self._cancels[key] = cancelled
        return {"cancelled": cancelled}

    async def _authorize(self, request: Request):
        body = await request.json()
        instance = self.instances.get(body.get("instance_id", ""))
        if instance is None:
            return JSONResponse({"detail": "unknown instance"}, status_code=404)
        units = int(body.get("units", 0))
        allowed = instance.status == "active" and instance.credits >= units
        auth_id = f"auth_{next(self._ids)}" if allowed else None
        if allowed:
            instance.credits -= units
            self.authorizations[auth_id] = {"instance_id": instance.instance_id, "units": units}
        return {"allowed": allowed, "authorization_id": auth_id, "remaining": instance.credits}

    async def _settle(self, request: Request):
        body = await request.json()
        held = self.authorizations.pop(body.get("authorization_id", ""), None)
        if held is None:
            return JSONResponse({"detail": "unknown authorization"}, status_code=404)
        instance = self.instances[held["instance_id"]]
        instance.credits += held["units"] - int(body.get("units", 0))
        return {"settled": True, "remaining": instance.credits}

    async def _entitlements(self, instance_id: str):
        instance = self.instances.get(instance_id)
        if instance is None:
            return JSONResponse({"detail": "unknown instance"}, status_code=404)
        return {
            "instance_id": instance.instance_id,
            "offering_version_id": instance.offering_version_id,
            "plan_id": instance.plan_id,
            "status": instance.status,
            "credits": instance.credits,
        }


def _recorded_body(raw: bytes) -> Any:
    """A call's body as recorded: its JSON, the text when it is not JSON, None when empty."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def service_token(issuer: str, secret: str, *, lifetime_s: int = 240) -> str:
    """A service JWT as the contract requires (for tests that call the fake directly)."""
    now = int(time.time())
    claims = {"iss": issuer, "aud": AUDIENCE, "iat": now, "exp": now + lifetime_s}
    return jwt.encode(claims, secret, algorithm="HS256")
