"""Provisioner test helpers: Saleor-style signers and JWKS server, order payloads, running apps, inbox rows."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.orm import Session

from service_src.common.tracing import Tracing
from service_src.provisioner.app import create_app
from service_src.provisioner.cli import main as cli_main
from service_src.provisioner.inbox import Delivery, InboxStore
from service_src.provisioner.settings import ProvisionerSettings
from tests.support.net import client_tls, run_uvicorn_in_thread

SERVICE_JWT_SECRET = "test-provisioner-service-jwt-secret-0123456789"


# ---- Saleor's signing side --------------------------------------------------------------------------------------
@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, body: bytes, *, kid: str | None = None) -> str:
        """Saleor-Signature as Saleor makes it (saleor/core/jwt_manager.py, ``jws_encode``): PyJWT's detached JWS,
        RS256, protected header {"alg":"RS256","b64":false,"crit":["b64"],"kid":...,"typ":"JWT"}."""
        return api_jws.encode(
            body, key=self.private, algorithm="RS256", headers={"kid": kid or self.kid}, is_payload_detached=True
        )


class JwksServer:
    """Saleor's /.well-known/jwks.json on loopback; keys can change and it can fail, and it counts fetches."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.failing = False
        self.origin = ""
        self.api_url = ""
        self.app = FastAPI()

        @self.app.get("/.well-known/jwks.json")
        async def jwks_document():
            self.fetches += 1
            if self.failing:
                return JSONResponse({"detail": "down"}, status_code=503)
            return {"keys": [k.jwk() for k in self.keys]}


@contextmanager
def serving_jwks(keys: list[SigningKey]) -> Iterator[JwksServer]:
    """A JwksServer on loopback with ``origin`` and ``api_url`` (Saleor's, for Saleor-Api-Url) set; stops after."""
    server = JwksServer(keys)
    with run_uvicorn_in_thread(server.app, wait_for_shutdown=False) as url:
        server.origin = url
        server.api_url = url + "/graphql/"
        yield server


# ---- payloads ------------------------------------------------------------------------------------------------------
def order_payload(
    order_id: str,
    *,
    typename: str = "OrderFullyPaid",
    lines: list[dict[str, Any]] | None = None,
    number: str = "42",
) -> dict[str, Any]:
    """Exactly the shape components/saleor/graphql's ProvisioningOrder subscription delivers."""
    if lines is None:
        lines = [line("ov_100", "pro")]
    return {
        "__typename": typename,
        "order": {
            "id": order_id,
            "number": number,
            "userEmail": "buyer@example.com",
            "channel": {"slug": "default-channel"},
            "total": {"gross": {"amount": 10.0, "currency": "USD"}},
            "lines": lines,
        },
    }


def line(offering: str, plan: str, *, quantity: int = 1, metadata: bool = True, line_id: str | None = None) -> dict:
    sku = f"{offering}:{plan}"
    meta = (
        [{"key": "cmp.offering_version_id", "value": offering}, {"key": "cmp.plan_id", "value": plan}]
        if metadata
        else []
    )
    return {
        "id": line_id or "T3JkZXJMaW5lOi" + uuid.uuid4().hex[:8],
        "quantity": quantity,
        "productSku": sku,
        "variant": {"id": "UHJvZHVjdFZhcmlhbnQ6" + uuid.uuid4().hex[:6], "sku": sku, "metadata": meta},
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# ---- the service -------------------------------------------------------------------------------------------------
def make_settings(database_url: str, control_plane_url: str, **overrides: Any) -> ProvisionerSettings:
    """Settings for a test: quick retries and polls; a Saleor origin to trust unless the test names its own."""
    values: dict[str, Any] = {
        "control_plane_url": control_plane_url,
        "service_jwt_secret": SERVICE_JWT_SECRET,
        "database_url": database_url,
        "saleor_allowed_origins": "https://saleor.test",
        "cp_timeout_seconds": 2.0,
        "retry_backoff_seconds": 0.05,
        "retry_backoff_max_seconds": 0.4,
        "retry_max_attempts": 50,
        "worker_poll_seconds": 0.1,
        "jwks_min_refetch_seconds": 30,
    }
    values.update(overrides)
    return ProvisionerSettings(**values)


@dataclass
class RunningProvisioner:
    url: str
    app: FastAPI
    store: InboxStore
    client: httpx.Client
    saleor_key: SigningKey  # signs deliveries unless a test gives its own signature
    saleor_api_url: str  # Saleor-Api-Url unless a test gives its own

    def deliver(
        self,
        event: str,
        body: bytes,
        *,
        signature: str | None = None,
        api_url: str | None = None,
        header_event: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST like Saleor does: event in the path, Saleor-* headers, signed with Saleor's key (detached JWS)
        unless a signature is given (``""``: no Saleor-Signature header)."""
        headers = {
            "Content-Type": "application/json",
            "Saleor-Event": header_event or event.replace("-", "_"),
            "Saleor-Api-Url": api_url or self.saleor_api_url,
        }
        if signature != "":
            headers["Saleor-Signature"] = signature if signature is not None else self.saleor_key.sign(body)
        headers.update(extra_headers or {})
        return self.client.post(f"/webhooks/{event}", content=body, headers=headers)


@contextmanager
def running_provisioner(settings: ProvisionerSettings, saleor: JwksServer,
                        tracing: Tracing | None = None) -> Iterator[RunningProvisioner]:
    """The app on loopback; its deliveries are signed with ``saleor``'s first key and name its API URL."""
    app = create_app(settings, tracing=tracing)
    with run_uvicorn_in_thread(app) as url, httpx.Client(base_url=url, timeout=10, verify=client_tls()) as client:
        yield RunningProvisioner(url, app, app.state.provisioner.store, client, saleor.keys[0], saleor.api_url)


def inbox_rows(store: InboxStore) -> list[Delivery]:
    """Every inbox row, oldest first, as the test reads the table."""
    with Session(store.engine) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``cmp-provisioner <argv>`` on exactly ``env``: main(), which the console script calls, in this process (a
    one-shot command reads only the environment); its exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
