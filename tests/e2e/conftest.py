"""The end-to-end smoke's world on loopback: OpenBao seeded from the program's seed table, PostgreSQL, the
control-plane, Saleor-JWKS and SaaS fakes, and both services as real processes (their console scripts).

Each service is configured only from what the program deploys for it: the dev stack's offline preview
(ConfigMap data, ExternalSecret entries resolved against Vault through the ClusterSecretStore's mount).
The only local changes are addresses (LOCAL_ADDRESSES): a key is replaced only if the ConfigMap has it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.dynamic import Config, ConfigureRequest

from components.saleor.schema import load_schema
from components.vault.paths import PROVISIONER as PROVISIONER_PATH
from components.vault.paths import SEED_PATHS, KeySource
from components.vault.program_key import VaultProgramKeyProvider
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.services.connector_gateway.fakes import SaaSFake
from tests.services.provisioner.helpers import JwksServer, SigningKey, serving_jwks
from tests.support.control_plane import ControlPlaneFake
from tests.support.net import free_port, run_uvicorn_in_thread, stop_process, wait_http
from tests.support.openbao import OpenBaoServer
from tests.support.postgres import PostgresServer
from tests.tools.verify.helpers import deploy_app
from tools.preview.runner import preview_stack

BIN = Path(sys.executable).parent
STACK = "dev"
# The stack secrets an operator sets (cmp-platform:<key>), as the seed provider would copy them into Vault.
OPERATOR_VALUES = {"langflowApiKey": "e2e-langflow-key", "openaiApiKey": "e2e-openai-key"}


@dataclass
class Preview:
    manifests: dict[tuple[str, str], dict[str, Any]]  # (kind, metadata.name) -> object
    outputs: dict[str, Any]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        try:
            return self.manifests[(kind, name)]
        except KeyError:
            raise AssertionError(f"the {STACK} preview has no {kind} {name}") from None


@pytest.fixture(scope="session")
def preview(tmp_path_factory) -> Preview:
    """The dev stack's offline preview, written to files like `make preview` does, then read back."""
    import json

    out = tmp_path_factory.mktemp("preview")
    result = preview_stack(STACK, out_root=out)
    assert result.code == 0, "\n".join(result.lines)
    manifests = {}
    for path in sorted((out / STACK / "manifests").rglob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        if isinstance(obj, dict) and "kind" in obj and "metadata" in obj:
            manifests[(obj["kind"], obj["metadata"]["name"])] = obj
    return Preview(manifests, json.loads((out / STACK / "outputs.json").read_text()))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def database_url(postgres) -> str:
    return postgres.create_database("cmp_e2e")


@pytest.fixture(scope="session")
def e2e_openbao() -> Iterator[OpenBaoServer]:
    """An OpenBao of its own: the smoke's seeds must not leak into the suite's shared dev server."""
    with OpenBaoServer() as server:
        yield server


@pytest.fixture(scope="session")
def seeded_vault(e2e_openbao, database_url):
    """Every path and key of components/vault/paths.SEED_PATHS written as the seed provider would."""
    operator = {**OPERATOR_VALUES, "provisionerDatabaseUrl": database_url}
    client = e2e_openbao.client()
    for seed in SEED_PATHS:
        data = {}
        for key in seed.keys:
            if key.source is KeySource.FIXED:
                data[key.name] = key.value
            elif key.source is KeySource.OPERATOR:
                data[key.name] = operator[key.config_key]
            else:
                data[key.name] = secrets.token_urlsafe(32)
        client.secrets.kv.v2.create_or_update_secret(path=seed.path, secret=data, mount_point=seed.mount)
    return e2e_openbao


def external_secret_env(preview: Preview, name: str, vault) -> dict[str, str]:
    """What ESO would put in the target Secret: each data[] entry read from the store's Vault mount."""
    es = preview.get("ExternalSecret", name)
    store = preview.get("ClusterSecretStore", es["spec"]["secretStoreRef"]["name"])
    mount = store["spec"]["provider"]["vault"]["path"]
    assert store["spec"]["provider"]["vault"]["version"] == "v2"
    client = vault.client()
    env = {}
    for entry in es["spec"]["data"]:
        ref = entry["remoteRef"]
        data = client.secrets.kv.v2.read_secret_version(path=ref["key"], mount_point=mount,
                                                        raise_on_deleted_version=True)["data"]["data"]
        env[entry["secretKey"]] = data[ref["property"]]
    return env


def service_env(preview: Preview, workload: str, vault, local: dict[str, str]) -> dict[str, str]:
    """ConfigMap + ExternalSecret of `workload`, with loopback addresses for keys the ConfigMap has."""
    config = dict(preview.get("ConfigMap", f"{workload}-config")["data"])
    unknown = sorted(set(local) - set(config))
    assert not unknown, f"local overrides {unknown} are not keys of ConfigMap {workload}-config"
    return {**config, **local, **external_secret_env(preview, f"{workload}-secrets", vault)}


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen
    log_path: Path
    env: dict[str, str]
    audit_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_service(name: str, argv: list[str], env: dict[str, str], port: int, tmp: Path) -> Service:
    log_path = tmp / f"{name}.log"
    full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **env, "PORT": str(port)}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(BIN / argv[0]), *argv[1:], "--host", "127.0.0.1", "--port", str(port)],
                                env=full_env, stdout=log, stderr=subprocess.STDOUT)
    service = Service(name, f"http://127.0.0.1:{port}", proc, log_path, env)
    try:
        wait_http(f"{service.url}/healthz", timeout=30, ok=lambda r: r.status_code == 200, proc=proc,
                  log=service.log)
    except TimeoutError:
        stop_process(proc)
        raise
    return service


@pytest.fixture(scope="session")
def saleor_key() -> SigningKey:
    return SigningKey(kid="e2e-saleor-key")


@pytest.fixture(scope="session")
def saleor_jwks(saleor_key) -> Iterator[JwksServer]:
    with serving_jwks([saleor_key]) as server:
        yield server


# The control plane and the services run once per module, as a deployment runs for its users: each test works
# on orders, tenants and calls of its own.


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlaneFake]:
    with ControlPlaneFake() as fake:
        yield fake


@pytest.fixture(scope="module")
def shop(preview, seeded_vault) -> Iterator[FakeSaleor | None]:
    """The Saleor the provisioner catches up with, its app made as `pulumi up` makes it and the app's token written
    into Vault by the program's own writer (VaultProgramKey); None without Saleor's schemas (CMP_SCHEMA_DIR)."""
    if load_schema("3.23") is None:
        yield None
        return
    with FakeSaleor(login_seconds=0.0) as fake:
        app_id, _ = deploy_app(fake, preview.outputs["webhookUrls"])
        writer = VaultProgramKeyProvider()
        writer.configure(ConfigureRequest(Config(raw_config={"vault:address": seeded_vault.addr,
                                                             "vault:token": seeded_vault.root_token},
                                                 project_name="cmp-platform")))
        writer.create({"mount": PROVISIONER_PATH.mount, "path": PROVISIONER_PATH.path, "key": "saleor_app_token",
                       "value": fake.app_token(app_id)})
        yield fake


@pytest.fixture(scope="module")
def provisioner(preview, seeded_vault, control_plane, saleor_jwks, shop, tmp_path_factory) -> Iterator[Service]:
    local = {"CONTROL_PLANE_URL": control_plane.url, "SALEOR_ALLOWED_ORIGINS": saleor_jwks.origin}
    if shop is not None:
        local["SALEOR_API_URL"] = shop.api_url  # catch-up reads this Saleor, with the app token from Vault
    env = service_env(preview, "cmp-provisioner", seeded_vault, local)
    control_plane.add_issuer("cmp-provisioner", env["SERVICE_JWT_SECRET"])
    service = start_service("cmp-provisioner", ["cmp-provisioner", "serve"], env, free_port(),
                            tmp_path_factory.mktemp("provisioner"))
    yield service
    stop_process(service.proc)


@pytest.fixture(scope="module")
def saas() -> Iterator[SaaSFake]:
    fake = SaaSFake()
    with run_uvicorn_in_thread(fake) as url:
        fake.url = url
        yield fake


@pytest.fixture(scope="module")
def gateway(preview, seeded_vault, control_plane, saas, tmp_path_factory) -> Iterator[Service]:
    tmp_path = tmp_path_factory.mktemp("gateway")
    audit = tmp_path / "gateway-audit.jsonl"
    env = service_env(preview, "cmp-connector", seeded_vault, {
        "CONTROL_PLANE_URL": control_plane.url, "VAULT_ADDR": seeded_vault.addr, "VAULT_AUTH_METHOD": "token",
        "CALLER_JWKS_URL": control_plane.url + "/.well-known/jwks.json", "CALLER_ISSUER": control_plane.url,
        "ZENDESK_BASE_URL": saas.url, "SLACK_BASE_URL": saas.url + "/api", "HUBSPOT_BASE_URL": saas.url,
        "AUDIT_LOG": str(audit)})
    env["VAULT_TOKEN"] = seeded_vault.root_token  # locally, instead of Kubernetes auth (the contract's local mode)
    control_plane.add_issuer("cmp-connector", env["SERVICE_JWT_SECRET"])
    service = start_service("cmp-connector", ["cmp-connector-gateway"], env, free_port(), tmp_path)
    service.audit_path = audit
    yield service
    stop_process(service.proc)
