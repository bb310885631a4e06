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
from tests.components.helpers import base_config, run_platform, run_stack
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


def pod_annotations(rec, name: str) -> dict[str, str]:
    deployment = next(r for r in rec.by_type("kubernetes:apps/v1:Deployment") if r.name == name)
    return deployment.inputs["spec"]["template"]["metadata"]["annotations"]


def test_a_rotation_trigger_rolls_exactly_the_workloads_reading_the_path():
    """`vault.rotations` rewrites a value at the next `up`: the pods reading it must restart to see it."""
    before = run_platform(base_config())
    rotated = run_platform(base_config(vault={"address": "http://vault.vault.svc.cluster.local:8200",
                                              "rotations": {"cmp/provisioner.database_url": "2026-12"}}))
    old, new = pod_annotations(before, "cmp-provisioner"), pod_annotations(rotated, "cmp-provisioner")
    assert new != old
    assert new["cmp.platform/secret-revision"] == "secret/cmp/provisioner: database_url=2026-12"
    assert new["checksum/config"] == old["checksum/config"]
    assert pod_annotations(rotated, "cmp-connector") == pod_annotations(before, "cmp-connector")
    # External Secrets re-reads Vault when its ExternalSecret's annotations change, after the seed's write.
    es = next(r for r in rotated.by_type(EXTERNAL_SECRET) if r.name == "cmp-provisioner-secrets")
    assert es.inputs["metadata"]["annotations"] == {
        "cmp.platform/secret-revision": "secret/cmp/provisioner: database_url=2026-12"}
    seed = next(r for r in rotated.by_type(SEED) if r.inputs["path"] == "cmp/provisioner")
    assert seed.urn in es.depends_on


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
