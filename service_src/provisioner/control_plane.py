"""The control-plane client: POST /instances and /instances/cancel with the provisioner's service JWT.

Failures are sorted the way the control-plane contract says (docs/contracts.md): 429, 5xx, timeouts and
connection errors are transient (the worker retries them), any other non-2xx is permanent (the row goes to
dead letters).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from service_src.common.http import HttpSession
from service_src.common.tokens import ServiceToken

ISSUER = "cmp-provisioner"
TOKEN_LIFETIME_S = 240  # the contract allows at most 5 minutes


class ControlPlaneError(Exception):
    """A failed call; ``transient`` says whether trying again may help. The message carries no secrets."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


def _detail(raw: bytes) -> str:
    try:
        body = json.loads(raw)
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    return str(detail if detail is not None else raw.decode("utf-8", "replace"))[:200]


class ControlPlaneClient:
    """Calls on the service's HTTP session (``service_src/common/http.py``) with the service token."""

    def __init__(self, base_url: str, service_jwt_secret: str, *, http: HttpSession) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = ServiceToken(service_jwt_secret, issuer=ISSUER, subject=ISSUER, lifetime_seconds=TOKEN_LIFETIME_S)
        self.http = http

    async def _post(self, path: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {self._token.token()}",
            "Idempotency-Key": idempotency_key,
            "Content-Type": "application/json",
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self.http.get().post(
                self._base_url + path, data=data, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError as exc:
            raise ControlPlaneError(f"POST {path} timed out", transient=True) from exc
        except aiohttp.ClientError as exc:
            raise ControlPlaneError(f"POST {path} failed: {type(exc).__name__}", transient=True) from exc
        if 200 <= status < 300:
            try:
                answer = json.loads(raw)
            except ValueError as exc:
                raise ControlPlaneError(f"POST {path} answered {status} with a non-JSON body", transient=True) from exc
            return answer if isinstance(answer, dict) else {"answer": answer}
        transient = status == 429 or status >= 500
        raise ControlPlaneError(f"POST {path} answered {status}: {_detail(raw)}", transient=transient, status=status)

    async def create_instance(self, body: dict[str, Any], *, order_id: str) -> dict[str, Any]:
        answer = await self._post("/instances", body, f"saleor-order:{order_id}")
        if not isinstance(answer.get("instance_id"), str):
            raise ControlPlaneError("POST /instances answered without an instance_id", transient=False)
        return answer

    async def cancel_instances(self, order_id: str) -> dict[str, Any]:
        return await self._post("/instances/cancel", {"order_id": order_id}, f"saleor-cancel:{order_id}")
