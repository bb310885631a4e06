"""The service: a FastAPI app (health, readiness, metrics, MCP and its protected resource metadata) behind a
thin ASGI front that sends the REST invoke hot path straight to its plain-ASGI endpoint and checks /mcp callers.

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
from mcp.server.auth.routes import build_resource_metadata_url

from service_src.connector_gateway.audit import AuditLog
from service_src.connector_gateway.auth import CallerVerifier, ServiceTokenMinter
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.gateway import ToolCall, ToolGateway
from service_src.connector_gateway.jwks import CallerKeys
from service_src.connector_gateway.mcp_server import build_mcp_server, mcp_asgi_app
from service_src.connector_gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from service_src.connector_gateway.policy import PolicyCache
from service_src.connector_gateway.ratelimit import rate_limiter
from service_src.connector_gateway.rest import InvokeEndpoint, is_invoke_path, new_request_id, respond
from service_src.connector_gateway.settings import CallerAuthMode, GatewaySettings
from service_src.connector_gateway.vault import CredentialStore, warn_about_local_setup

log = logging.getLogger("cmp.connector_gateway")


class GatewayApp:
    """ASGI front: ``POST /v1/tools/{tool}:invoke`` to the lean endpoint, everything else to FastAPI; /mcp
    passes the same identity check as REST first, so every refusal there is decided and audited here."""

    def __init__(self, api: FastAPI, invoke: InvokeEndpoint, gateway: ToolGateway) -> None:
        self.api = api
        self.invoke = invoke
        self.gateway = gateway
        self.settings = gateway.settings
        self.allowed_origins = self.settings.allowed_origins
        self.challenge = f'resource_metadata="{build_resource_metadata_url(self.settings.resource_url)}"'

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if is_invoke_path(path):
                await self.invoke(scope, receive, send)
                return
            if path == "/mcp":
                await self._mcp(scope, receive, send)
                return
        await self.api(scope, receive, send)

    async def _mcp(self, scope, receive, send) -> None:
        """/mcp: the caller check first; then the SDK, whose own HTTP refusals (406 without the Accept it needs,
        400 for a malformed message, 413 for a chunked body over the limit) are audited here too."""
        call = ToolCall(request_id=new_request_id(), transport="mcp", tool="")
        if await self._refused_mcp_caller(scope, send, call):
            return

        async def watched(message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                status = message["status"]  # audited before the caller can see the answer
                call.refusal = GatewayError(status, "mcp_transport_refused",
                                            f"the MCP transport refused the request with HTTP {status}")
                with contextlib.suppress(GatewayError):
                    await self.gateway.invoke(call)
            await send(message)

        await self.api(scope, receive, watched)

    async def _refused_mcp_caller(self, scope, send, call: ToolCall) -> bool:
        """Refuse (audited, naming what is wrong) before the SDK sees it: an Origin not allowed (403), no valid
        token (401, with the RFC 9728 metadata URL), or a declared body over MAX_BODY_BYTES (413)."""
        headers = scope["headers"]
        try:
            origin = dict(headers).get(b"origin")
            if origin is not None and origin.decode("latin-1").rstrip("/") not in self.allowed_origins:
                raise GatewayError(403, "origin_not_allowed", "Origin header "
                                   f"{origin.decode('latin-1')[:100]!r} is not in MCP_ALLOWED_ORIGINS")
            call.caller = await self.gateway.identify(headers, "mcp")
            declared = dict(headers).get(b"content-length", b"0")
            if declared.isdigit() and int(declared) > self.settings.max_body_bytes:
                raise GatewayError(413, "body_too_large", f"body of {int(declared)} bytes exceeds "
                                   f"MAX_BODY_BYTES={self.settings.max_body_bytes}")
        except GatewayError as exc:
            call.refusal = exc
            with contextlib.suppress(GatewayError):
                await self.gateway.invoke(call)
            extra = exc.headers
            if exc.status == 401:
                extra = {**extra, "www-authenticate": f"{extra.get('www-authenticate', 'Bearer')}, {self.challenge}"}
            await respond(send, exc.status, {**exc.body(), "request_id": call.request_id}, call.request_id, extra)
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
    warn_about_local_setup(settings)
    client = _http_client(settings)
    minter = ServiceTokenMinter(settings.service_jwt_secret.get_secret_value())
    policies = PolicyCache(client, settings.control_plane_url, minter, timeout=settings.cp_timeout_seconds,
                           grace_seconds=settings.policy_cache_grace_seconds)
    credentials = CredentialStore(settings)
    metrics = GatewayMetrics()
    audit = AuditLog(settings.audit_log)
    keys = None
    if settings.caller_auth_mode is CallerAuthMode.JWKS:
        keys = CallerKeys(client, settings.caller_jwks_url or "", ttl_seconds=settings.jwks_cache_ttl_seconds,
                          min_refetch_seconds=settings.jwks_min_refetch_seconds,
                          timeout_seconds=settings.cp_timeout_seconds, metrics=metrics)
        verifier = CallerVerifier(keys=keys, issuer=settings.caller_issuer)
    else:
        log.warning("CALLER_AUTH_MODE=hs256: callers are verified with the shared SERVICE_JWT_SECRET")
        verifier = CallerVerifier(secret=settings.service_jwt_secret.get_secret_value(),
                                  issuer=settings.caller_issuer)
    gateway = ToolGateway(settings, policies, credentials, audit, metrics, verifier,
                          rate_limiter(settings, metrics))
    if not settings.policy_enforcement:
        log.warning("POLICY_ENFORCEMENT=false: every tool is allowed on every binding of the caller's project")

    mcp = build_mcp_server(gateway)
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
        if keys is not None:
            keys_ok, checks["caller_keys"] = await keys.ready()
            ok = ok and keys_ok
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
