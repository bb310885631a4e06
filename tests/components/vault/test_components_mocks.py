"""VaultSecretSeeds and VaultAccess under the recording engine: resources, inputs, order, schema."""

from __future__ import annotations

import json

import jsonschema
import pulumi
import pytest
import yaml

from components.vault.access import VaultAccess, VaultAccessArgs, cluster_secret_store_spec
from components.vault.paths import SEED_PATHS, SeedKey, SeedPath
from components.vault.seeds import VaultSecretSeeds, VaultSecretSeedsArgs
from infra.recording import SECRET, run_program
from tools.preview.validation import validate_object

SEED = "pulumi-python:dynamic/vault:Seed"
MOUNT = "vault:index/mount:Mount"
POLICY = "vault:index/policy:Policy"
ROLE = "vault:kubernetes/authBackendRole:AuthBackendRole"
AUTH = "vault:index/authBackend:AuthBackend"
AUTH_CONFIG = "vault:kubernetes/authBackendConfig:AuthBackendConfig"
CSS = "kubernetes:external-secrets.io/v1:ClusterSecretStore"


def access_args(**over) -> VaultAccessArgs:
    return VaultAccessArgs(namespace="cmp", vault_address="http://vault.vault.svc.cluster.local:8200", **over)


def record(seeds: VaultSecretSeedsArgs | None = None, access: VaultAccessArgs | None = None):
    def program():
        VaultSecretSeeds("vault-seeds", seeds or VaultSecretSeedsArgs())
        VaultAccess("vault-access", access or access_args())

    return run_program(program, stack="dev", config={})


def test_mounts_and_one_seed_per_table_path():
    rec = record(VaultSecretSeedsArgs(rotations={"cmp/minio.secret_key": "2026-11"}))
    mounts = {m.inputs["path"]: m for m in rec.by_type(MOUNT)}
    assert set(mounts) == {"secret", "kv"}
    for mount in mounts.values():
        assert mount.inputs["type"] == "kv" and mount.inputs["options"] == {"version": "2"}
    seeds = {s.inputs["path"]: s for s in rec.by_type(SEED)}
    assert set(seeds) == {p.path for p in SEED_PATHS}
    minio = seeds["cmp/minio"].inputs
    assert minio["mount"] == "secret" and minio["deleteOnDestroy"] is False
    assert minio["keys"] == [
        {"name": "access_key", "source": "fixed", "rotation": "", "value": "cmp-artifacts"},
        {"name": "secret_key", "source": "generated", "rotation": "2026-11"},
    ]
    runner = seeds["cmp/runner"].inputs["keys"]
    assert [k["configKey"] for k in runner] == ["langflowApiKey", "openaiApiKey"]
    component = rec.one("cmp:platform:VaultSecretSeeds", "vault-seeds")
    assert all(s.parent == component.urn for s in seeds.values())


def test_mount_before_seed():
    rec = record()
    secret_mount = next(m for m in rec.by_type(MOUNT) if m.inputs["path"] == "secret")
    for seed in rec.by_type(SEED):
        assert secret_mount.urn in seed.depends_on, seed.name
    order = [r.urn for r in rec.resources]
    assert max(order.index(m.urn) for m in rec.by_type(MOUNT)) < min(order.index(s.urn) for s in rec.by_type(SEED))


def test_seed_inputs_hold_no_secret_values():
    rec = record()
    for seed in rec.by_type(SEED):
        inputs = {k: v for k, v in seed.inputs.items() if k != "__provider"}
        assert SECRET not in json.dumps(inputs)
        assert set(inputs) == {"mount", "path", "keys", "deleteOnDestroy"} | (
            {"version", "present", "missing", "owned", "fingerprints"} & set(inputs))


def test_adopted_mounts_are_read_not_created_and_prod_protects_seeds():
    rec = record(VaultSecretSeedsArgs(adopt_mounts=True, protect=True))
    mounts = rec.by_type(MOUNT)
    assert {m.id for m in mounts} == {"secret", "kv"}
    assert all(m.inputs == {} or "type" not in m.inputs for m in mounts)  # a read, not a registration
    assert all(s.protect for s in rec.by_type(SEED))
    for seed in rec.by_type(SEED):
        assert any(m.urn in seed.depends_on for m in mounts)


def test_renamed_mounts_follow_config():
    rec = record(VaultSecretSeedsArgs(secret_mount="platform", kv_mount="tenants"),
                 access_args(secret_mount="platform", kv_mount="tenants"))
    assert {m.inputs["path"] for m in rec.by_type(MOUNT)} == {"platform", "tenants"}
    assert {s.inputs["mount"] for s in rec.by_type(SEED)} == {"platform"}
    connector = next(p for p in rec.by_type(POLICY) if p.inputs["name"] == "cmp-connector")
    assert 'path "platform/data/cmp/connector"' in connector.inputs["policy"]
    assert 'path "tenants/data/connectors/*"' in connector.inputs["policy"]


def test_operator_keys_not_set_are_named_in_a_warning(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: warnings.append(msg))
    record(VaultSecretSeedsArgs(operator_keys_set=frozenset({"provisionerDatabaseUrl"})))
    assert len(warnings) == 2
    assert any("pulumi config set --secret cmp-platform:openaiApiKey" in w and "cmp/runner" in w for w in warnings)
    assert any("cmp-platform:langflowApiKey" in w for w in warnings)


def test_policies_roles_and_order():
    rec = record(access=access_args(connector_role="gateway"))
    policies = {p.inputs["name"]: p for p in rec.by_type(POLICY)}
    assert set(policies) == {"cmp-connector", "cmp-provisioner", "cmp-external-secrets"}
    roles = {r.inputs["roleName"]: r for r in rec.by_type(ROLE)}
    assert set(roles) == {"gateway", "cmp-provisioner", "cmp-external-secrets"}
    expect = {
        "gateway": ("cmp-connector", "cmp", "cmp-connector"),
        "cmp-provisioner": ("cmp-provisioner", "cmp", "cmp-provisioner"),
        "cmp-external-secrets": ("external-secrets", "external-secrets", "cmp-external-secrets"),
    }
    auth = rec.by_type(AUTH)[0]
    config = rec.by_type(AUTH_CONFIG)[0]
    assert auth.inputs["type"] == "kubernetes" and auth.inputs["path"] == "kubernetes"
    assert config.inputs["kubernetesHost"] == "https://kubernetes.default.svc"
    for role_name, (sa, ns, policy) in expect.items():
        role = roles[role_name]
        assert role.inputs["boundServiceAccountNames"] == [sa]
        assert role.inputs["boundServiceAccountNamespaces"] == [ns]
        assert role.inputs["tokenPolicies"] == [policy]
        assert role.inputs["backend"] == "kubernetes"
        assert policies[policy].urn in role.depends_on  # policy before role
        assert auth.urn in role.depends_on and config.urn in role.depends_on
    css = rec.by_type(CSS)[0]
    assert roles["cmp-external-secrets"].urn in css.depends_on


def test_adopted_auth_backend_is_read_and_not_reconfigured():
    rec = record(access=access_args(adopt_auth_backend=True))
    assert [a.id for a in rec.by_type(AUTH)] == ["kubernetes"]
    assert rec.by_type(AUTH_CONFIG) == []
    assert all(r.inputs["backend"] for r in rec.by_type(ROLE))


def _css_object(rec) -> dict:
    css = rec.by_type(CSS)[0]
    return {"apiVersion": css.inputs["apiVersion"], "kind": css.inputs["kind"],
            "metadata": css.inputs["metadata"], "spec": css.inputs["spec"]}


def test_cluster_secret_store_matches_the_served_v1_crd_schema(schema_dir):
    crd = yaml.load((schema_dir / "external-secrets/external-secrets.io_clustersecretstores.yaml").read_text(),
                    Loader=yaml.CSafeLoader)  # libyaml: the same documents as safe_load, parsed ~9x faster
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    assert v1["served"] is True
    obj = _css_object(record())
    assert obj["apiVersion"] == "external-secrets.io/v1" and obj["metadata"]["name"] == "vault-backend"
    jsonschema.Draft7Validator(v1["schema"]["openAPIV3Schema"]).validate(obj)
    assert validate_object(obj, "1.33") is None  # strict: unknown fields rejected too


def test_cluster_secret_store_spec_contract():
    spec = cluster_secret_store_spec(access_args(cluster_secret_store="vault-prod"))
    vault = spec["provider"]["vault"]
    assert vault["path"] == "secret" and vault["version"] == "v2"
    assert vault["auth"]["kubernetes"] == {
        "mountPath": "kubernetes", "role": "cmp-external-secrets",
        "serviceAccountRef": {"name": "external-secrets", "namespace": "external-secrets"},
    }
    assert spec["conditions"] == [{"namespaces": ["cmp"]}]


def test_schema_rejects_a_broken_store(schema_dir):
    obj = _css_object(record())
    obj["spec"]["provider"]["vault"]["version"] = "v3"
    assert validate_object(obj, "1.33") is not None


@pytest.mark.parametrize("path", ["cmp//connector", "cmp/../x", "/cmp", "CMP/x", "cmp/x y"])
def test_malformed_table_path_fails_naming_it(path):
    with pytest.raises(ValueError, match="vault path") as err:
        SeedPath(mount="secret", path=path, keys=(SeedKey(name="a", source="generated"),))
    assert repr(path) in str(err.value)


def test_bad_table_entries_fail_naming_the_key():
    with pytest.raises(ValueError, match="'access_key' is fixed"):
        SeedKey(name="access_key", source="fixed")
    with pytest.raises(ValueError, match="'db' is operator-supplied"):
        SeedKey(name="db", source="operator")
    with pytest.raises(ValueError, match="repeats key"):
        SeedPath(mount="secret", path="cmp/x", keys=(SeedKey(name="a", source="generated"),) * 2)


def test_unknown_rotation_key_fails_naming_it():
    with pytest.raises(ValueError, match=r"cmp/connector\.nope"):
        VaultSecretSeedsArgs(rotations={"cmp/connector.nope": "1"})
