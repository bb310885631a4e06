"""The service: a FastAPI app (health, readiness, metrics, MCP) behind a thin ASGI front that sends the
REST invoke hot path straight to its plain-ASGI endpoint.

Build it with ``create_app()``; uvicorn serves it via ``cmp-connector-gateway`` (cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from service_src.connector_gateway.audit import AuditLog
from service_src.connector_gateway.auth import ServiceTokenMinter
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.gateway import ToolCall, ToolGateway
from service_src.connector_gateway.mcp_server import build_mcp_server, mcp_asgi_app
from service_src.connector_gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from service_src.connector_gateway.policy import PolicyCache
from service_src.connector_gateway.rest import InvokeEndpoint, is_invoke_path, new_request_id, respond
from service_src.connector_gateway.settings import GatewaySettings
from service_src.connector_gateway.vault import CredentialStore

log = logging.getLogger("cmp.connector_gateway")


class GatewayApp:
    """ASGI front: ``POST /v1/tools/{tool}:invoke`` to the lean endpoint, everything else to FastAPI."""

    def __init__(self, api: FastAPI, invoke: InvokeEndpoint, gateway: ToolGateway) -> None:
        self.api = api
        self.invoke = invoke
        self.gateway = gateway
        self.settings = gateway.settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if is_invoke_path(path):
                await self.invoke(scope, receive, send)
                return
            if path == "/mcp" and await self._refused_mcp_caller(scope, send):
                return
        await self.api(scope, receive, send)

    async def _refused_mcp_caller(self, scope, send) -> bool:
        """Refuse (audited, naming what is wrong) before the SDK sees it: no valid token (401), or a declared
        body over MAX_BODY_BYTES (413)."""
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization")
        authorization = auth.decode("latin-1") if auth is not None else None
        try:
            caller = self.gateway.authenticate(authorization)
            declared = headers.get(b"content-length", b"0")
            if declared.isdigit() and int(declared) > self.settings.max_body_bytes:
                raise GatewayError(413, "body_too_large", f"body of {int(declared)} bytes exceeds "
                                   f"MAX_BODY_BYTES={self.settings.max_body_bytes}")
        except GatewayError as exc:
            call = ToolCall(request_id=new_request_id(), transport="mcp", tool="", authorization=authorization)
            if exc.status != 401:
                call.caller, call.refusal = caller, exc
            with contextlib.suppress(GatewayError):
                await self.gateway.invoke(call)
            await respond(send, exc.status, {**exc.body(), "request_id": call.request_id}, call.request_id,
                          exc.headers)
            return True
        return False


def _http_client(settings: GatewaySettings) -> httpx.AsyncClient:
    # The control plane's keep-alive pool (policy fetches, readiness); the SaaS calls use the gateway's own.
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30)
    return httpx.AsyncClient(limits=limits, timeout=settings.connector_timeout_seconds, follow_redirects=False,
                             trust_env=False)


def create_app(settings: GatewaySettings | None = None) -> GatewayApp:
    settings = settings or GatewaySettings()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    client = _http_client(settings)
    minter = ServiceTokenMinter(settings.service_jwt_secret.get_secret_value())
    policies = PolicyCache(client, settings.control_plane_url, minter, timeout=settings.cp_timeout_seconds,
                           grace_seconds=settings.policy_cache_grace_seconds)
    credentials = CredentialStore(settings)
    metrics = GatewayMetrics()
    audit = AuditLog(settings.audit_log)
    gateway = ToolGateway(settings, policies, credentials, audit, metrics)
    if not settings.policy_enforcement:
        log.warning("POLICY_ENFORCEMENT=false: every tool is allowed on every binding of the caller's project")

    mcp = build_mcp_server(gateway, f"http://127.0.0.1:{settings.port}/mcp")
    mcp_app = mcp_asgi_app(mcp, settings.max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            # Everything built so far lives as long as the process: keep it out of the collector's scans, so
            # full collections on the hot path stay short.
            gc.freeze()
            try:
                yield
            finally:
                await gateway.aclose()
                await client.aclose()
                credentials.close()
                audit.close()

    api = FastAPI(title="cmp-connector-gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    api.state.gateway = gateway

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz() -> JSONResponse:
        vault_ok, vault_detail = await asyncio.to_thread(credentials.ready)
        cp_ok, cp_detail = await _control_plane_reachable(client, settings, minter)
        checks = {"vault": vault_detail, "control_plane": cp_detail}
        ok = vault_ok and cp_ok
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @api.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    api.mount("/", mcp_app)  # the SDK app routes /mcp (and 404s anything else)
    return GatewayApp(api, InvokeEndpoint(gateway), gateway)


async def _control_plane_reachable(client: httpx.AsyncClient, settings: GatewaySettings,
                                   minter: ServiceTokenMinter) -> tuple[bool, str]:
    try:
        response = await client.get(f"{settings.control_plane_url}/healthz", timeout=settings.cp_timeout_seconds,
                                    headers={"authorization": f"Bearer {minter.token()}"})
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    if response.status_code >= 500:
        return False, f"HTTP {response.status_code}"
    return True, "ok"
