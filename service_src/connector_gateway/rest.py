"""REST ``POST /v1/tools/{tool}:invoke`` as a plain ASGI endpoint: the hot path skips FastAPI's routing,
dependency injection and response models, and reads the body with a hard size limit.

Not a FastAPI route because of the throughput target (15% of an nginx hop, make bench-gateway): a FastAPI route
costs each call more CPU than the margin the gateway has over that target (docs/connector-gateway.md)."""

from __future__ import annotations

import itertools
import json
import os
import re
from typing import Any

from service_src.common.body import BodyRefused, read_body
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.gateway import ToolCall, ToolGateway

PATH_PREFIX = "/v1/tools/"
PATH_SUFFIX = ":invoke"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_BODY_KEYS = {"binding", "arguments"}
# Request ids when the caller sends none: a random per-process prefix and a counter (no syscall per call).
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


def is_invoke_path(path: str) -> bool:
    return path.startswith(PATH_PREFIX) and path.endswith(PATH_SUFFIX)


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def _parse(body: bytes, call: ToolCall) -> None:
    """Fill binding and arguments from the body, or set the refusal that names what is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        call.refusal = GatewayError(400, "malformed_json", f"body is not valid JSON ({str(exc)[:120]})")
        return
    if not isinstance(doc, dict):
        call.refusal = GatewayError(400, "invalid_body", "body must be a JSON object {binding, arguments}")
        return
    unknown = sorted(set(doc) - _BODY_KEYS)
    if unknown:
        call.refusal = GatewayError(400, "invalid_body", f"unknown body field(s): {', '.join(unknown)[:200]}")
        return
    if "binding" not in doc:
        call.refusal = GatewayError(400, "invalid_body", "body field 'binding' is required")
        return
    call.binding = doc["binding"]
    call.arguments = doc.get("arguments", {})
    call.raw_body = None


class InvokeEndpoint:
    def __init__(self, gateway: ToolGateway) -> None:
        self.gateway = gateway
        self.limit = gateway.settings.max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        headers = _headers(scope)
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = rid if _REQUEST_ID.fullmatch(rid) else new_request_id()
        path: str = scope["path"]
        call = ToolCall(
            request_id=request_id,
            transport="rest",
            tool=path[len(PATH_PREFIX) : -len(PATH_SUFFIX)],
            headers=scope["headers"],
        )
        if scope["method"] != "POST":
            call.refusal = GatewayError(405, "method_not_allowed", "use POST for /v1/tools/{tool}:invoke")
        else:
            try:
                body = await read_body(receive, self.limit, headers.get(b"content-length"))
                call.raw_body = body
                _parse(body, call)
            except BodyRefused as exc:
                code = "body_too_large" if exc.status == 413 else "bad_request"
                call.refusal = GatewayError(exc.status, code, str(exc))
        try:
            result = await self.gateway.invoke(call)
        except GatewayError as exc:
            payload = {**exc.body(), "request_id": request_id}
            await respond(send, exc.status, payload, request_id, exc.headers)
            return
        payload = {"request_id": request_id, "tool": call.tool, "binding": call.binding, "result": result}
        await respond(send, 200, payload, request_id, None)


async def respond(send, status: int, payload: dict[str, Any], request_id: str,
                   extra: dict[str, str] | None) -> None:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if extra:
        headers.extend((k.encode(), v.encode()) for k, v in extra.items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
