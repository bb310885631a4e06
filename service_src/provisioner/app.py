"""HTTP routes: the three Saleor order webhooks, health, readiness and metrics.

A delivery is checked in this order, each failure answered before anything is stored: body size (413),
Saleor-Event against the endpoint (400), signature on the raw bytes (401; 503 when Saleor's JWKS cannot be
fetched, so Saleor retries), payload shape (400/422). Only then is it committed to the inbox and answered 200.

Before serving, the app upgrades the inbox schema (MIGRATE_ON_START; ``schema.migrate`` serialises replicas on an
advisory lock); /readyz answers 503 while the database is behind the code's revision.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, suppress

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.routing import Route
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from service_src.common.body import BodyRefused, read_body
from service_src.common.http import HttpSession
from service_src.common.jwks import KeysUnavailable
from service_src.common.tracing import Tracing, configure

from .catchup import CURSOR as CATCHUP_CURSOR
from .catchup import CatchUp
from .control_plane import ControlPlaneClient
from .group_commit import GroupCommitter
from .inbox import PENDING, RECORDED, InboxStore, NewDelivery
from .jwks import SaleorKeys
from .metrics import Metrics
from .payloads import OrderEvent, PayloadError, parse_payload
from .schema import SchemaError
from .settings import ProvisionerSettings, origin_of
from .signatures import SignatureError, parse_detached_jws, verify_jws
from .tracing import delivery_span, saved_context
from .worker import Worker

log = structlog.get_logger("cmp_provisioner.app")


class Rejected(Exception):
    def __init__(self, status: int, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.outcome = outcome
        self.detail = detail


class Verifier:
    """Decides whether a raw body was signed by an allowed Saleor: a detached JWS (RS256, ``b64:false``) whose key
    is in the JWKS at the origin of Saleor-Api-Url. Anything else, a legacy hex HMAC included, is refused."""

    def __init__(self, settings: ProvisionerSettings, keys: SaleorKeys) -> None:
        self._origins = settings.allowed_origins
        self._keys = keys

    def _origin(self, api_url: str | None) -> str:
        if not api_url:
            raise Rejected(401, "rejected_signature", "Saleor-Api-Url header is missing: no JWKS to verify with")
        try:
            origin = origin_of(api_url)
        except ValueError as exc:
            raise Rejected(400, "rejected_payload", "Saleor-Api-Url is not an http(s) URL") from exc
        if origin not in self._origins:
            raise Rejected(401, "rejected_signature", f"Saleor origin {origin} is not in SALEOR_ALLOWED_ORIGINS")
        return origin

    async def verify(self, body: bytes, signature: str | None, api_url: str | None) -> None:
        if not signature:
            raise Rejected(401, "rejected_signature", "Saleor-Signature header is missing")
        try:
            jws = parse_detached_jws(signature.strip(), body)
            key = await self._keys.key(self._origin(api_url), jws.kid)
            verify_jws(jws, key)
        except SignatureError as exc:
            raise Rejected(401, "rejected_signature", str(exc)) from exc
        except KeysUnavailable as exc:
            raise Rejected(503, "unavailable", str(exc)) from exc


def migrate_schema(store: InboxStore) -> None:
    """Upgrade the schema before serving; while the database is unreachable retry for up to 30 s (the pod's
    liveness probe gives a start about 35 s), then give up so Kubernetes restarts the pod. SchemaError (a
    schema no revision explains) is not retried."""
    for attempt in Retrying(
        retry=retry_if_exception_type(OperationalError),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(30),
        reraise=True,
    ):
        with attempt:
            try:
                before, after = store.migrate()
            except OperationalError as exc:
                log.warning("schema_migration_waiting", error=type(exc).__name__)
                raise
    log.info("schema_ready", revision_before=before, revision=after)


class Provisioner:
    """What the routes share, typed: built with the app; the parts that need the event loop (JWKS cache,
    control-plane client, worker) made by ``start`` in the app's lifespan and released by ``stop``."""

    def __init__(self, settings: ProvisionerSettings, store: InboxStore, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.tracing = tracing or configure("cmp-provisioner")  # off unless the OTEL_* variables turn it on
        self.store = store
        self.metrics = Metrics(store.counts, store.oldest_pending_seconds)
        self.committer = GroupCommitter(store.record_many)
        # One HTTP session for the control plane and Saleor's JWKS; at most 16 connections to each host.
        self.http = HttpSession(timeout_seconds=settings.cp_timeout_seconds, limit_per_host=16,
                                trace_configs=self.tracing.aiohttp_trace_configs())
        self.keys = SaleorKeys(
            self.http.get_json,
            ttl_seconds=settings.jwks_cache_ttl_seconds,
            min_refetch_seconds=settings.jwks_min_refetch_seconds,
        )
        self.verifier = Verifier(settings, self.keys)
        self.control_plane = ControlPlaneClient(
            settings.control_plane_url, settings.service_jwt_secret.get_secret_value(), http=self.http
        )
        self.worker = Worker(settings, store, self.control_plane, self.metrics, self.tracing)
        self.catchup = CatchUp(settings, store, self.http, self.metrics, self.worker.wake)
        self.metrics.watch_catchup_cursor(lambda: store.catchup_cursor(CATCHUP_CURSOR))
        self._task: asyncio.Task | None = None
        self._catchup_task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.settings.migrate_on_start:
            try:
                await asyncio.to_thread(migrate_schema, self.store)
            except SchemaError as exc:
                log.error("schema_migration_failed", reason=str(exc))
                raise
        if self.settings.worker_enabled:
            self._task = asyncio.create_task(self.worker.run(), name="provisioner-worker")
        self._catchup_task = asyncio.create_task(self.catchup.run_forever(), name="provisioner-catchup")
        log.info("started", worker=self.settings.worker_enabled, origins=sorted(self.settings.allowed_origins),
                 catch_up=self.catchup.status)

    async def stop(self) -> None:
        self.catchup.stop()
        if self._catchup_task is not None:
            self._catchup_task.cancel()  # a read in progress is repeated by the next run; nothing half-written
            with suppress(asyncio.CancelledError):
                await self._catchup_task
        self.worker.stop()
        if self._task is not None:
            # Let the batch in hand finish and be written; cut it off only past one CP timeout and a margin.
            with suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=self.settings.cp_timeout_seconds + 5)
        await self.http.aclose()
        self.store.dispose()
        self.tracing.shutdown()

    async def receive(self, request: Request, event: OrderEvent) -> Response:
        """One delivery: checked in the module docstring's order, committed, answered."""
        if not self.tracing.enabled:
            return await self._receive(request, event)
        with delivery_span(self.tracing, event.value, request.headers) as span:
            response = await self._receive(request, event)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _receive(self, request: Request, event: OrderEvent) -> Response:
        try:
            body = await self._body(request)
            check_event_header(request.headers.get("saleor-event"), event)
            await self.verifier.verify(
                body, request.headers.get("saleor-signature"), request.headers.get("saleor-api-url")
            )
            try:
                payload = parse_payload(body, event)
            except PayloadError as exc:
                raise Rejected(exc.status, "rejected_payload", str(exc)) from exc
            # ORDER_CREATED is kept for the record only: it lands finished and the worker never claims it.
            status = RECORDED if event is OrderEvent.ORDER_CREATED else PENDING
            created = await self._commit(NewDelivery(event.value, payload.order.id, body, status, saved_context()))
        except Rejected as exc:
            self.metrics.deliveries.labels(event.value, exc.outcome).inc()
            log.info("delivery_rejected", saleor_event=event.value, status=exc.status, reason=exc.detail)
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)
        outcome = "accepted" if created else "duplicate"
        self.metrics.deliveries.labels(event.value, outcome).inc()
        if created and status == PENDING:
            self.worker.wake()
        return JSONResponse({"status": outcome, "order_id": payload.order.id})

    async def _body(self, request: Request) -> bytes:
        try:
            return await read_body(request.receive, self.settings.max_body_bytes, request.headers.get("content-length"))
        except BodyRefused as exc:
            raise Rejected(exc.status, "too_large" if exc.status == 413 else "rejected_payload", str(exc)) from exc

    async def _commit(self, delivery: NewDelivery) -> bool:
        try:
            return await self.committer.submit(delivery)
        except SQLAlchemyError as exc:
            log.error("inbox_write_failed", error=type(exc).__name__)
            raise Rejected(503, "unavailable", "the inbox database is unavailable; retry later") from exc


def check_event_header(header_event: str | None, event: OrderEvent) -> None:
    if not header_event:
        raise Rejected(400, "rejected_event", "Saleor-Event header is missing")
    if header_event.strip().lower() != event.header:
        raise Rejected(
            400, "rejected_event", f"Saleor-Event {header_event!r} does not match this endpoint ({event.header})"
        )


def _provisioner(request: Request) -> Provisioner:
    return request.app.state.provisioner


def _webhook(event: OrderEvent):
    async def endpoint(request: Request) -> Response:
        return await _provisioner(request).receive(request, event)

    return endpoint


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    provisioner = _provisioner(request)
    try:
        state = await asyncio.wait_for(
            asyncio.to_thread(provisioner.store.schema_state), timeout=provisioner.settings.cp_timeout_seconds
        )
    except Exception as exc:  # any failure means not ready; the type is enough to debug
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    # A revision newer than this code's (a later release migrated first, during its rollout) is ready:
    # revisions only add what older code can ignore.
    # Catch-up's state is reported, never a reason to refuse traffic: webhooks work without it.
    catch_up = provisioner.catchup.status
    if state.behind:
        return JSONResponse({"status": "unavailable", "database": "ok", "schema": state.describe(),
                             "catch_up": catch_up}, 503)
    return JSONResponse({"status": "ok", "database": "ok", "schema": state.describe(), "catch_up": catch_up})


async def metrics_endpoint(request: Request) -> Response:
    data = await asyncio.to_thread(generate_latest, _provisioner(request).metrics.registry)
    return PlainTextResponse(data, media_type=CONTENT_TYPE_LATEST)


@asynccontextmanager
async def lifespan(app: FastAPI):
    provisioner: Provisioner = app.state.provisioner
    await provisioner.start()
    try:
        yield
    finally:
        await provisioner.stop()


def create_app(settings: ProvisionerSettings, *, store: InboxStore | None = None,
               tracing: Tracing | None = None) -> FastAPI:
    provisioner = Provisioner(settings, store or InboxStore(settings.database_url.get_secret_value()), tracing)
    app = FastAPI(title="cmp-provisioner", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.provisioner = provisioner
    # Plain Starlette routes: the webhooks take the raw request and need none of FastAPI's parameter machinery,
    # which is a measurable share of a delivery's cost at a thousand deliveries a second.
    for event in OrderEvent:
        app.router.routes.append(Route(f"/webhooks/{event.path}", _webhook(event), methods=["POST"], name=event.path))
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"])
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"])
    return app
