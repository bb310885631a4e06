"""The service: a FastAPI app (health, readiness, metrics, MCP and its protected resource metadata) behind a
thin ASGI front that sends the REST invoke hot path straight to its plain-ASGI endpoint and checks /mcp callers.

Build it with ``create_app(settings)``; ``cmp-connector-gateway`` (cli.py) has uvicorn call ``served_app`` in each
worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from mcp.server.auth.routes import build_resource_metadata_url

from service_src.common.http import HttpSession
from service_src.common.logs import configure_logging
from service_src.common.tracing import Tracing, configure
from service_src.connector_gateway.audit import AuditLog
from service_src.connector_gateway.auth import CallerVerifier, service_token
from service_src.connector_gateway.errors import GatewayError
from service_src.connector_gateway.gateway import ToolCall, ToolGateway
from service_src.connector_gateway.jwks import CallerKeys
from service_src.connector_gateway.mcp_server import SERVER_NAME, build_mcp_server, mcp_asgi_app
from service_src.connector_gateway.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from service_src.connector_gateway.policy import PolicyCache
from service_src.connector_gateway.ratelimit import rate_limiter
from service_src.connector_gateway.rest import InvokeEndpoint, is_invoke_path, new_request_id, respond
from service_src.connector_gateway.settings import CallerAuthMode, GatewaySettings
from service_src.connector_gateway.vault import CredentialStore, warn_about_local_setup

log = structlog.get_logger("cmp.connector_gateway")


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


class GatewayService:
    """What the routes and the lifespan share, typed; built once per app (per worker process)."""

    def __init__(self, settings: GatewaySettings, tracing: Tracing | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        warn_about_local_setup(settings)
        self.settings = settings
        self.tracing = tracing or configure(SERVER_NAME)  # off unless the OTEL_* variables turn it on
        # The control plane's policies, caller keys and readiness; the SaaS calls use the gateway's own pool.
        self.http = HttpSession(timeout_seconds=settings.cp_timeout_seconds, limit=50, limit_per_host=20,
                                trace_configs=self.tracing.aiohttp_trace_configs())
        self.token = service_token(settings.service_jwt_secret.get_secret_value())
        self.policies = PolicyCache(self.http, settings.control_plane_url, self.token,
                                    timeout=settings.cp_timeout_seconds,
                                    grace_seconds=settings.policy_cache_grace_seconds, clock=clock)
        self.credentials = CredentialStore(settings, tracing=self.tracing)
        self.metrics = GatewayMetrics()
        self.audit = AuditLog(settings.audit_log)
        self.keys: CallerKeys | None = None
        if settings.caller_auth_mode is CallerAuthMode.JWKS:
            self.keys = CallerKeys(self.http.get_json, settings.caller_jwks_url or "",
                                   ttl_seconds=settings.jwks_cache_ttl_seconds,
                                   min_refetch_seconds=settings.jwks_min_refetch_seconds, metrics=self.metrics,
                                   clock=clock)
            verifier = CallerVerifier(keys=self.keys, issuer=settings.caller_issuer)
        else:
            log.warning("caller_auth_hs256", detail="callers are verified with the shared SERVICE_JWT_SECRET")
            verifier = CallerVerifier(secret=settings.service_jwt_secret.get_secret_value(),
                                      issuer=settings.caller_issuer)
        self.gateway = ToolGateway(settings, self.policies, self.credentials, self.audit, self.metrics, verifier,
                                   rate_limiter(settings, self.metrics), tracing=self.tracing)
        if not settings.policy_enforcement:
            log.warning("policy_enforcement_off", detail="every tool is allowed on every binding of the project")
        self.mcp = build_mcp_server(self.gateway)

    async def readiness(self) -> JSONResponse:
        vault_ok, vault_detail = await asyncio.to_thread(self.credentials.ready)
        cp_ok, cp_detail = await self._control_plane_reachable()
        checks = {"vault": vault_detail, "control_plane": cp_detail}
        ok = vault_ok and cp_ok
        if self.keys is not None:
            keys_ok, checks["caller_keys"] = await self.keys.ready()
            ok = ok and keys_ok
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    async def _control_plane_reachable(self) -> tuple[bool, str]:
        url = f"{self.settings.control_plane_url}/healthz"
        try:
            async with self.http.get().get(url, headers={"authorization": f"Bearer {self.token.token()}"},
                                           allow_redirects=False) as response:
                status = response.status
        except TimeoutError:
            return False, "timeout"
        except aiohttp.ClientError as exc:
            return False, type(exc).__name__
        return (False, f"HTTP {status}") if status >= 500 else (True, "ok")

    async def aclose(self) -> None:
        await self.gateway.aclose()
        await self.http.aclose()
        self.credentials.close()
        self.audit.close()
        self.tracing.shutdown()


def _service(request: Request) -> GatewayService:
    return request.app.state.service


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def readyz(request: Request) -> JSONResponse:
    return await _service(request).readiness()


async def metrics_endpoint(request: Request) -> Response:
    return Response(_service(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@contextlib.asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    service: GatewayService = api.state.service
    async with service.mcp.session_manager.run():
        # Everything built so far lives as long as the process: keep it out of the collector's scans, so full
        # collections on the hot path stay short.
        gc.freeze()
        try:
            yield
        finally:
            await service.aclose()


def create_app(settings: GatewaySettings | None = None, tracing: Tracing | None = None,
               clock: Callable[[], float] = time.monotonic) -> GatewayApp:
    """``clock`` times the policy and caller-key caches (a test moves it instead of waiting)."""
    service = GatewayService(settings or GatewaySettings(), tracing, clock)
    api = FastAPI(title="cmp-connector-gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    api.state.service = service
    api.add_api_route("/healthz", healthz, methods=["GET"])
    api.add_api_route("/readyz", readyz, methods=["GET"])
    api.add_api_route("/metrics", metrics_endpoint, methods=["GET"])
    api.mount("/", mcp_asgi_app(service.mcp, service.settings.max_body_bytes))  # the SDK routes /mcp, 404s the rest
    return GatewayApp(api, InvokeEndpoint(service.gateway), service.gateway)


def served_app() -> GatewayApp:
    """The factory uvicorn calls in each worker process (cli.py): the service's logging, then the app."""
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    return create_app(settings)
