"""A local Saleor for the operations the provider uses: an HTTP GraphQL server on loopback.

Every incoming document is parsed and validated against Saleor 3.21's schema with graphql-core and executed
against it, so a field or argument Saleor does not have fails here as it would there. It reproduces the
quirks in DESIGN.md: appDelete is a soft delete (app(id) reads null afterwards), custom headers read back
lower-cased and as "{}" when empty, webhookDelete answers DELETE_FAILED while a delivery is in flight, and
errors come three ways (mutation errors[], top-level PermissionDenied, HTTP 400 for invalid documents).
It counts requests by root field and injects failures (5xx, dropped connections) on demand.

Reusable by end-to-end tests: `FakeSaleor(...).start()`, `.api_url`, `.stop()`, or as a context manager.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

SCHEMA_VERSION = "3.21"
ALL_STAFF_PERMISSIONS = ("MANAGE_APPS", "MANAGE_ORDERS")


def global_id(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def _permission_denied(*permissions: str) -> GraphQLError:
    return GraphQLError(
        "To access this path, you need one of the following permissions: " + ", ".join(permissions),
        extensions={"exception": {"code": "PermissionDenied"}},
    )


def _err(field_name: str | None, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"field": field_name, "code": code, "message": message, **extra}


@dataclass
class Request:
    operation: str | None
    roots: list[str]
    status: int
    authenticated: bool


@dataclass
class Failure:
    root: str | None  # None: any request
    kind: str  # http_<status> | disconnect | disconnect_after | permission_denied
    remaining: int


@dataclass
class Staff:
    email: str
    password: str
    permissions: tuple[str, ...]


@dataclass
class State:
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: Counter = field(default_factory=Counter)


class FakeSaleor:
    """Saleor's GraphQL API for apps, webhooks and staff login, on 127.0.0.1."""

    def __init__(
        self,
        *,
        staff_email: str = "staff@example.com",
        staff_password: str = "staff-password-Xy9!",
        staff_permissions: tuple[str, ...] = ALL_STAFF_PERMISSIONS,
    ) -> None:
        self.schema = load_schema(SCHEMA_VERSION)
        self.staff = Staff(staff_email, staff_password, tuple(staff_permissions))
        self.state = State()
        self.requests: list[Request] = []
        self.issued_tokens: set[str] = set()
        self.app_tokens: list[str] = []
        self.bodies: list[bytes] = []
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
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-saleor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
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

    # ---- what tests look at and do ------------------------------------------------------------------------
    def count(self, root: str | None = None) -> int:
        """Requests received (all, or those whose document selects `root`)."""
        with self._lock:
            return sum(1 for r in self.requests if root is None or root in r.roots)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bodies.clear()

    def fail_next(self, kind: str, root: str | None = None, times: int = 1) -> None:
        """Inject a failure: http_<status>, disconnect (before executing), disconnect_after (after executing),
        permission_denied, drop_auth_token (appCreate runs but answers without the token)."""
        with self._lock:
            self._failures.append(Failure(root, kind, times))

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

    # ---- request handling ---------------------------------------------------------------------------------
    def _take_failure(self, roots: list[str]) -> str | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and (failure.root is None or failure.root in roots):
                    failure.remaining -= 1
                    return failure.kind
        return None

    def handle(self, body: bytes, authorization: str | None) -> tuple[int, dict[str, Any] | None, str | None]:
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
        user = self._user(authorization)
        resolvers = _Resolvers(self, user, forbid=kind == "permission_denied")
        with self._lock:
            result = execute(
                self.schema, document, root_value=resolvers, variable_values=payload.get("variables") or {}
            )
        answer = result.formatted
        if kind == "drop_auth_token" and (answer.get("data") or {}).get("appCreate"):
            answer["data"]["appCreate"]["authToken"] = None  # the app exists, but its token was lost
        status = 400 if result.data is None and result.errors else 200
        return self._record(name, roots, status, authorization, answer, kind)

    def _record(self, name, roots, status, authorization, answer, kind=None):
        with self._lock:
            self.requests.append(Request(name, roots, status, bool(authorization)))
        return status, answer, kind

    def _user(self, authorization: str | None) -> Staff | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.staff if authorization[7:] in self.issued_tokens else None

    def next_id(self, type_name: str) -> str:
        return global_id(type_name, next(self._ids))


def _doc_error(message: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"exception": {"code": "GraphQLError"}}}


class _Resolvers:
    """Root fields, resolved the way Saleor's do for the parts the provider uses."""

    def __init__(self, fake: FakeSaleor, user: Staff | None, *, forbid: bool) -> None:
        self.fake, self.user, self.forbid = fake, user, forbid
        self.state = fake.state

    def _require(self, permission: str = "MANAGE_APPS") -> None:
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
            "secretKey": hook.get("secretKey"),
        }

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

    # ---- Mutation: staff login ----------------------------------------------------------------------------
    def tokenCreate(self, _info, email: str, password: str, audience: str | None = None) -> dict[str, Any]:
        staff = self.fake.staff
        if email != staff.email or password != staff.password:
            return {
                "token": None,
                "user": None,
                "errors": [_err("email", "INVALID_CREDENTIALS", "Please, enter valid credentials")],
            }
        token = secrets.token_urlsafe(24)
        self.fake.issued_tokens.add(token)
        return {
            "token": token,
            "user": {"email": email, "userPermissions": [{"code": p, "name": p} for p in staff.permissions]},
            "errors": [],
        }

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

    def do_POST(self) -> None:
        if self.path == "/graphql":
            self._send(301, b"", {"Location": "/graphql/"})  # Django's APPEND_SLASH, as Saleor answers
            return
        if self.path != "/graphql/":
            self._send(404, b"Not Found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.fake._lock:
            self.fake.bodies.append(body)
        status, answer, kind = self.fake.handle(body, self.headers.get("Authorization"))
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
