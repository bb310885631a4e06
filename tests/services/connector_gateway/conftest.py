"""Fixtures for the connector gateway: the real OpenBao, the control-plane fake, the SaaS fakes, and the
gateway itself served by uvicorn on loopback with its audit log in a file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from components.vault.paths import CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT
from service_src.connector_gateway.app import create_app
from service_src.connector_gateway.settings import GatewaySettings
from tests.services.connector_gateway.fakes import SaaSFake
from tests.support.caller_keys import JWKS_PATH, CallerKeyring
from tests.support.net import client_tls, free_port, run_uvicorn_in_thread
from tests.support.tiers import server_fixture

JWT_SECRET = "test-connector-jwt-secret-0123456789"

# Secrets no log line may ever contain.
ZENDESK_TOKEN_ACME = "zd-secret-acme-7f3a9c"
ZENDESK_TOKEN_GLOBEX = "zd-secret-globex-2b8e1d"
SLACK_TOKEN_ACME = "xoxb-secret-acme-5c1e4f"
HUBSPOT_TOKEN_ACME = "pat-na1-secret-acme-9d2c7b"
HUBSPOT_TOKEN_ACME_SALES = "pat-na1-secret-sales-3e6a0f"
ALL_SECRETS = (ZENDESK_TOKEN_ACME, ZENDESK_TOKEN_GLOBEX, SLACK_TOKEN_ACME, HUBSPOT_TOKEN_ACME,
               HUBSPOT_TOKEN_ACME_SALES, JWT_SECRET)

CREDENTIALS = {
    ("acme", "support", "zd"): {"subdomain": "acme", "email": "bot@acme.test", "api_token": ZENDESK_TOKEN_ACME},
    ("acme", "support", "chat"): {"bot_token": SLACK_TOKEN_ACME},
    ("acme", "support", "crm"): {"access_token": HUBSPOT_TOKEN_ACME},
    ("acme", "sales", "crm2"): {"access_token": HUBSPOT_TOKEN_ACME_SALES},
    ("globex", "support", "zd"): {"subdomain": "globex", "email": "bot@globex.test",
                                  "api_token": ZENDESK_TOKEN_GLOBEX},
}

POLICIES = {
    ("acme", "support"): [
        {"binding": "zd", "connector": "zendesk", "tools": ["zendesk.create_ticket", "zendesk.get_ticket"]},
        {"binding": "chat", "connector": "slack", "tools": ["slack.post_message"]},
        {"binding": "crm", "connector": "hubspot", "tools": ["hubspot.search_contacts"]},
    ],
    ("acme", "sales"): [
        {"binding": "crm2", "connector": "hubspot", "tools": ["hubspot.create_contact", "hubspot.search_contacts"]},
    ],
    ("globex", "support"): [
        {"binding": "zd", "connector": "zendesk", "tools": ["zendesk.get_ticket"]},
    ],
}


REST_AUDIENCE = "cmp-connector-gateway"
_KEYRING: list[CallerKeyring] = []  # the keyring of the running test's control-plane fake


def keyring() -> CallerKeyring:
    assert _KEYRING, "caller tokens need the control-plane fake (the `policies` fixture)"
    return _KEYRING[-1]


def caller_token(org: str = "acme", project: str = "support", sub: str = "agent-1", *, secret: str | None = None,
                 lifetime: int = 300, alg: str = "ES256", kid: str | None = None,
                 audience: str | None = REST_AUDIENCE, issuer: str | None = None, **extra) -> str:
    """A caller JWT signed by the control plane's key of ``alg`` (or, with ``secret``, HS256 with it)."""
    claims = {"org": org, "project": project, "sub": sub, **extra}
    if secret is None:
        return keyring().mint(claims, alg=alg, kid=kid, lifetime=lifetime, audience=audience, issuer=issuer)
    now = int(time.time())
    full = {"iss": issuer, "aud": audience, "iat": now, "exp": now + lifetime, **claims}
    return jwt.encode({k: v for k, v in full.items() if v is not None}, secret, algorithm="HS256")


def auth(**kwargs) -> dict[str, str]:
    return {"authorization": f"Bearer {caller_token(**kwargs)}"}


@pytest.fixture(scope="session")
def seeded_openbao(openbao):
    """OpenBao with every test tenant's connector credentials at kv/data/connectors/{org}/{project}/{binding}."""
    client = openbao.client()
    for (org, project, binding), data in CREDENTIALS.items():
        client.secrets.kv.v2.create_or_update_secret(
            path=f"{CONNECTOR_CREDENTIALS_PREFIX}/{org}/{project}/{binding}", secret=data, mount_point=CONNECTOR_MOUNT
        )
    # A secret outside any tenant prefix: traversal attempts must never read it.
    client.secrets.kv.v2.create_or_update_secret(path="connectors-admin", secret={"x": "y"},
                                                 mount_point=CONNECTOR_MOUNT)
    return openbao


@server_fixture
def saas() -> Iterator[SaaSFake]:
    fake = SaaSFake(
        zendesk_logins={"bot@acme.test/token": ZENDESK_TOKEN_ACME, "bot@globex.test/token": ZENDESK_TOKEN_GLOBEX},
        slack_tokens={SLACK_TOKEN_ACME},
        hubspot_tokens={HUBSPOT_TOKEN_ACME, HUBSPOT_TOKEN_ACME_SALES},
    )
    with run_uvicorn_in_thread(fake, wait_for_shutdown=False) as url:
        fake.url = url
        yield fake


@pytest.fixture
def policies(control_plane):
    control_plane.add_issuer("cmp-connector", JWT_SECRET)
    for (org, project), bindings in POLICIES.items():
        control_plane.set_policy(org, project, bindings, ttl_seconds=60)
    _KEYRING.append(control_plane.caller_keys)
    yield control_plane
    _KEYRING.remove(control_plane.caller_keys)


def gateway_settings(cp_url: str, saas_url: str, audit_path: Path, **overrides) -> GatewaySettings:
    values = dict(
        control_plane_url=cp_url,
        service_jwt_secret=JWT_SECRET,
        caller_jwks_url=cp_url + JWKS_PATH,
        caller_issuer=cp_url,
        vault_auth_method="token",
        vault_connector_mount=CONNECTOR_MOUNT,
        vault_connector_prefix=CONNECTOR_CREDENTIALS_PREFIX,
        zendesk_base_url=saas_url,
        slack_base_url=saas_url + "/api",
        hubspot_base_url=saas_url,
        audit_log=str(audit_path),
        connector_timeout_seconds=2,
        cp_timeout_seconds=1,
        vault_timeout_seconds=1,
    )
    values.update(overrides)
    return GatewaySettings(**values)


@dataclass
class RunningGateway:
    url: str
    settings: GatewaySettings
    audit_path: Path
    app: object
    http: httpx.Client

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line.strip()]

    def invoke(self, tool: str, body, *, headers: dict[str, str] | None = None, **token_kwargs) -> httpx.Response:
        """POST /v1/tools/{tool}:invoke with a token for ``token_kwargs`` (or exactly ``headers``)."""
        return self.http.post(f"/v1/tools/{tool}:invoke", json=body,
                              headers=headers if headers is not None else auth(**token_kwargs))


class ManualClock:
    """A monotonic clock that moves only when the test says so (the policy and caller-key caches read it)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@server_fixture
def start_gateway(seeded_openbao, policies, saas, tmp_path) -> Iterator[Callable[..., RunningGateway]]:
    """Starts a gateway (settings overridable); all started ones stop at the end of the test."""
    stack = []

    def start(tracing=None, clock=time.monotonic, **overrides) -> RunningGateway:
        audit_path = tmp_path / f"audit-{len(stack)}.jsonl"
        port = free_port()
        values = {"vault_addr": seeded_openbao.addr, "vault_token": seeded_openbao.root_token,
                  "mcp_resource_url": f"http://127.0.0.1:{port}/mcp", **overrides}
        settings = gateway_settings(policies.url, saas.url, audit_path, **values)
        app = create_app(settings, tracing, clock)
        ctx = run_uvicorn_in_thread(app, port)
        url = ctx.__enter__()
        http = httpx.Client(base_url=url, timeout=10, verify=client_tls())
        stack.append((ctx, http))
        return RunningGateway(url=url, settings=settings, audit_path=audit_path, app=app, http=http)

    yield start
    for ctx, http in reversed(stack):
        http.close()
        ctx.__exit__(None, None, None)


@pytest.fixture
def gateway(start_gateway) -> RunningGateway:
    return start_gateway()
