"""The Vault pieces inside the real program: wiring with the workloads, per stack, and no leak end to end."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest

from components.vault import kv
from components.vault.paths import FINGERPRINT_KEY_PATH, SEED_PATHS
from components.vault.seed_provider import VaultSeedProvider
from tests.components.helpers import run_stack
from tests.support.provider_host import ProviderHost
from tools.preview.runner import preview_stack

SEED = "pulumi-python:dynamic/vault:Seed"
POLICY = "vault:index/policy:Policy"
ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
CSS = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"


def policy_paths(hcl: str) -> set[str]:
    return set(re.findall(r'path "([^"]+)"', hcl))


@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def stack(request):
    return request.param, run_stack(request.param)


def test_every_table_path_is_seeded_and_prod_protects_seeds(stack):
    name, rec = stack
    seeds = rec.by_type(SEED)
    assert sorted(s.inputs["path"] for s in seeds) == sorted(p.path for p in SEED_PATHS)
    assert all(s.protect is (name == "prod") for s in seeds)


def test_eso_policy_is_exactly_what_the_external_secrets_read(stack):
    _, rec = stack
    (css,) = rec.by_type(CSS)
    mount = css.inputs["spec"]["provider"]["vault"]["path"]
    used = {f"{mount}/data/{d['remoteRef']['key']}" for es in rec.by_type(EXTERNAL_SECRET)
            for d in es.inputs["spec"]["data"]}
    assert used, "the workloads have ExternalSecrets"
    eso = next(p for p in rec.by_type(POLICY) if p.inputs["name"] == "cmp-external-secrets")
    assert policy_paths(eso.inputs["policy"]) == used
    for es in rec.by_type(EXTERNAL_SECRET):
        assert es.inputs["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore",
                                                       "name": css.inputs["metadata"]["name"]}


def test_connector_role_matches_the_gateway_config(stack):
    _, rec = stack
    config = next(r for r in rec.resources if r.type == "kubernetes:core/v1:ConfigMap"
                  and r.inputs["metadata"]["name"] == "cmp-connector-config")
    role_names = {r.inputs["roleName"] for r in rec.by_type(ROLE)}
    assert config.inputs["data"]["VAULT_K8S_ROLE"] in role_names
    sa_names = {r.inputs["metadata"]["name"] for r in rec.resources if r.type == "kubernetes:core/v1:ServiceAccount"}
    for role in rec.by_type(ROLE):
        (sa,) = role.inputs["boundServiceAccountNames"]
        assert sa in sa_names or sa == "external-secrets"


def test_no_generated_value_in_resources_json_outputs_manifests_or_host_logs(openbao, tmp_path: Path):
    """Preview the dev stack, seed its exact seed inputs through the provider host, then look everywhere."""
    result = preview_stack("dev", out_root=tmp_path)
    assert result.code == 0, result.lines
    rows = json.loads((tmp_path / "dev" / "resources.json").read_text())
    seed_rows = [r for r in rows if r["type"] == SEED]
    assert len(seed_rows) == len(SEED_PATHS)
    mount = f"leak-{secrets.token_hex(4)}"
    openbao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    operator = {"cmp-platform:provisionerDatabaseUrl": "postgresql://u:dsn-pass-1@db/x",
                "cmp-platform:langflowApiKey": "lf-key-1", "cmp-platform:openaiApiKey": "sk-key-1"}
    outs = []
    with ProviderHost(VaultSeedProvider()) as host:
        host.configure({"vault:address": openbao.addr, "vault:token": openbao.root_token, **operator})
        for row in seed_rows:
            inputs = {k: v for k, v in row["inputs"].items() if k != "__provider"}
            inputs["mount"] = mount
            checked, failures = host.check(inputs)
            assert failures == []
            _, created = host.create(checked)
            outs.append(created)
    values = set(operator.values())
    for seed in SEED_PATHS:
        values |= set(kv.read_state(openbao.client(), None, mount, seed.path).data.values())
    values.add(kv.read_state(openbao.client(), None, mount, FINGERPRINT_KEY_PATH).data["hmac_key"])
    values.discard("cmp-artifacts")  # the fixed, public value from the table
    assert len(values) == 3 + 4 + 1  # operator, generated, fingerprint key
    haystack = "\n".join(p.read_text() for p in (tmp_path / "dev").rglob("*") if p.is_file())
    haystack += json.dumps(outs) + host.stderr()
    leaked = [v for v in values if v in haystack]
    assert leaked == []


def test_malformed_table_path_fails_preview_naming_it(tmp_path: Path):
    from components.vault.paths import SeedKey, SeedPath

    def program():
        SeedPath(mount="secret", path="cmp//connector", keys=(SeedKey(name="k", source="generated"),))

    result = preview_stack("dev", out_root=tmp_path, program=program)
    assert result.code == 2
    (line,) = result.lines
    assert "vault path 'cmp//connector'" in line
    assert not (tmp_path / "dev").exists()  # nothing written
