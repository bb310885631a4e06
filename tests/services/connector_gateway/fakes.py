"""Local fakes of the three SaaS APIs the gateway calls, with their real request shapes and auth schemes.

One plain-ASGI app serves all three (fast enough to sit under the benchmark):
- Zendesk: ``POST /api/v2/tickets.json``, ``GET /api/v2/tickets/{id}.json``, basic auth ``{email}/token:{token}``;
- Slack: ``POST /api/chat.postMessage``, ``Authorization: Bearer <bot token>``, errors as HTTP 200 ``ok:false``;
- HubSpot: ``POST /crm/v3/objects/contacts``, ``POST /crm/v3/objects/contacts/search``, Bearer token.
Point ZENDESK_BASE_URL at ``url``, SLACK_BASE_URL at ``url + "/api"``, HUBSPOT_BASE_URL at ``url``.
Every request is recorded (``calls``); ``fail_next(service, status, count)`` and ``delay_seconds`` inject faults.
Each also takes users' OAuth access tokens and serves its OAuth token endpoint (``oauth[service]``,
oauth_fakes.py): Slack ``POST /api/oauth.v2.access``, HubSpot ``POST /oauth/v1/token``, Zendesk
``POST /oauth/tokens``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.services.connector_gateway.oauth_fakes import (
    OAuthVendor,
    default_vendors,
    form_token_endpoint,
    slack_token_endpoint,
)

_TOKEN_PATHS = {"/oauth/tokens": "zendesk", "/api/oauth.v2.access": "slack", "/oauth/v1/token": "hubspot"}


async def read_body(receive) -> bytes:
    """The whole ASGI request body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def send_json(send, status: int, payload: Any) -> None:
    out = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


@dataclass
class SaaSCall:
    service: str
    method: str
    path: str
    authorization: str | None
    body: Any
    traceparent: str | None = None


@dataclass
class SaaSFake:
    zendesk_logins: dict[str, str] = field(default_factory=dict)  # "email/token" -> api_token
    slack_tokens: set[str] = field(default_factory=set)
    hubspot_tokens: set[str] = field(default_factory=set)
    slack_channels: set[str] = field(default_factory=lambda: {"C0GENERAL", "#general"})
    delay_seconds: float = 0.0
    record: bool = True
    oauth: dict[str, OAuthVendor] = field(default_factory=default_vendors)

    def __post_init__(self) -> None:
        self.calls: list[SaaSCall] = []
        self.tickets: dict[int, dict[str, Any]] = {
            1: {"id": 1, "subject": "Printer on fire", "status": "open", "priority": "high", "description": "Help"}
        }
        self.contacts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(100)
        self._fail: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    # ---- set-up and assertions ------------------------------------------------------------------------
    def fail_next(self, service: str, status: int, count: int = 1) -> None:
        with self._lock:
            self._fail.setdefault(service, []).extend([status] * count)

    def calls_to(self, service: str) -> list[SaaSCall]:
        return [c for c in self.calls if c.service == service]

    def _injected(self, service: str) -> int | None:
        with self._lock:
            queue = self._fail.get(service)
            return queue.pop(0) if queue else None

    # ---- ASGI ------------------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1") or None
        method, path = scope["method"], scope["path"]
        if headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded"):
            doc = dict(parse_qsl(body.decode()))
        else:
            try:
                doc = json.loads(body) if body else None
            except ValueError:
                doc = None
        service = _TOKEN_PATHS.get(path) or (
            "zendesk" if path.startswith("/api/v2/") else "slack" if path.startswith("/api/") else "hubspot")
        if self.record:
            traceparent = headers.get(b"traceparent")
            self.calls.append(SaaSCall(service, method, path, auth, doc, traceparent and traceparent.decode()))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        injected = self._injected(service)
        if injected is not None:
            status, payload = injected, {"error": "injected failure"}
        elif path in _TOKEN_PATHS and method == "POST":
            status, payload = self._token_endpoint(service, auth, doc if isinstance(doc, dict) else {})
        elif service == "zendesk":
            status, payload = self._zendesk(method, path, auth, doc)
        elif service == "slack":
            status, payload = self._slack(method, path, auth, doc)
        else:
            status, payload = self._hubspot(method, path, auth, doc)
        await send_json(send, status, payload)

    def _token_endpoint(self, service: str, auth: str | None, form: dict[str, str]) -> tuple[int, Any]:
        vendor = self.oauth[service]
        if service == "slack":
            return slack_token_endpoint(vendor, auth, form)
        return form_token_endpoint(vendor, form)

    # ---- Zendesk ---------------------------------------------------------------------------------------
    def _zendesk(self, method: str, path: str, auth: str | None, doc: Any) -> tuple[int, Any]:
        if auth and auth.startswith("Bearer "):
            if self.oauth["zendesk"].check(auth[7:]) != "ok":
                return 401, {"error": "invalid_token", "error_description": "The access token provided is "
                             "expired, revoked, malformed or invalid for other reasons."}
            return self._zendesk_api(method, path, doc)
        if not auth or not auth.startswith("Basic "):
            return 401, {"error": "Couldn't authenticate you"}
        try:
            user, _, token = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return 401, {"error": "Couldn't authenticate you"}
        if not user.endswith("/token") or self.zendesk_logins.get(user) != token:
            return 401, {"error": "Couldn't authenticate you"}
        return self._zendesk_api(method, path, doc)

    def _zendesk_api(self, method: str, path: str, doc: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/api/v2/tickets.json":
            ticket = (doc or {}).get("ticket") if isinstance(doc, dict) else None
            if not isinstance(ticket, dict) or "comment" not in ticket:
                return 422, {"error": "RecordInvalid", "description": "Record validation errors"}
            tid = next(self._ids)
            record = {"id": tid, "subject": ticket.get("subject"), "status": "new",
                      "priority": ticket.get("priority"), "description": ticket["comment"].get("body")}
            self.tickets[tid] = record
            return 201, {"ticket": record}
        match = re.fullmatch(r"/api/v2/tickets/(\d+)\.json", path)
        if method == "GET" and match:
            ticket = self.tickets.get(int(match.group(1)))
            if ticket is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}
            return 200, {"ticket": ticket}
        return 404, {"error": "InvalidEndpoint", "description": "Not found"}

    # ---- Slack -----------------------------------------------------------------------------------------
    def _slack(self, method: str, path: str, auth: str | None, doc: Any) -> tuple[int, Any]:
        if method != "POST" or path != "/api/chat.postMessage":
            return 404, {"ok": False, "error": "unknown_method"}
        token = auth[7:] if auth and auth.startswith("Bearer ") else None
        if token is None:
            return 200, {"ok": False, "error": "not_authed"}
        if token not in self.slack_tokens:
            state = self.oauth["slack"].check(token)
            if state != "ok":
                return 200, {"ok": False, "error": "token_expired" if state == "expired" else "invalid_auth"}
        if not isinstance(doc, dict) or not doc.get("text"):
            return 200, {"ok": False, "error": "no_text"}
        if doc.get("channel") not in self.slack_channels:
            return 200, {"ok": False, "error": "channel_not_found"}
        ts = f"1700000000.{next(self._ids):06d}"
        return 200, {"ok": True, "channel": doc["channel"], "ts": ts, "message": {"text": doc["text"], "ts": ts}}

    # ---- HubSpot ---------------------------------------------------------------------------------------
    def _hubspot(self, method: str, path: str, auth: str | None, doc: Any) -> tuple[int, Any]:
        token = auth[7:] if auth and auth.startswith("Bearer ") else None
        state = "ok" if token in self.hubspot_tokens else self.oauth["hubspot"].check(token)
        if state == "expired":
            return 401, {"status": "error", "message": "The OAuth token used to make this call expired.",
                         "category": "EXPIRED_AUTHENTICATION"}
        if state != "ok":
            return 401, {"status": "error", "message": "Authentication credentials not found.",
                         "category": "INVALID_AUTHENTICATION"}
        if method == "POST" and path == "/crm/v3/objects/contacts":
            props = (doc or {}).get("properties") if isinstance(doc, dict) else None
            if not isinstance(props, dict) or "email" not in props:
                return 400, {"status": "error", "message": "Property values were not valid", "category":
                             "VALIDATION_ERROR"}
            if props["email"] in self.contacts:
                existing = self.contacts[props["email"]]["id"]
                return 409, {"status": "error", "message": f"Contact already exists. Existing ID: {existing}",
                             "category": "CONFLICT"}
            contact = {"id": str(next(self._ids)), "properties": props, "archived": False}
            self.contacts[props["email"]] = contact
            return 201, contact
        if method == "POST" and path == "/crm/v3/objects/contacts/search":
            doc = doc if isinstance(doc, dict) else {}
            results = list(self.contacts.values())
            for group in doc.get("filterGroups", []):
                for flt in group.get("filters", []):
                    results = [c for c in results if c["properties"].get(flt["propertyName"]) == flt["value"]]
            if doc.get("query"):
                q = doc["query"].lower()
                results = [c for c in results if any(q in str(v).lower() for v in c["properties"].values())]
            # HubSpot's search pages by offset: ``after`` is the index of the first result, and
            # ``paging.next.after`` is given while more remain.
            start, limit = int(doc.get("after") or 0), int(doc.get("limit", 10))
            answer: dict[str, Any] = {"total": len(results), "results": results[start:start + limit]}
            if start + limit < len(results):
                answer["paging"] = {"next": {"after": str(start + limit)}}
            return 200, answer
        return 404, {"status": "error", "message": "Not found", "category": "OBJECT_NOT_FOUND"}
