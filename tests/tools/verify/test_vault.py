"""Verify's Vault checks against a real OpenBao: seed paths by KV v2 metadata only, policies as declared."""

from __future__ import annotations

import pytest

from components.vault.paths import SEED_PATHS
from components.vault.policies import CONSUMERS, consumer_policy_hcl, seeder_policy_hcl
from tests.support.openbao import OpenBaoServer
from tests.support.tiers import server_fixture
from tests.tools.verify.helpers import target
from tools.verify import vault
from tools.verify.result import Status

POLICY_READ = 'path "sys/policies/acl/*" {\n  capabilities = ["read"]\n}\n'


@server_fixture(scope="module")
def bao():
    """An OpenBao of its own: these tests write the consumer policies, which other tests also name."""
    with OpenBaoServer() as server:
        yield server


@pytest.fixture
def deployed(bao):
    """What `pulumi up` leaves in Vault: every seed path and every consumer policy; and an `up`-like token."""
    client = bao.client()
    for seed in SEED_PATHS:
        client.secrets.kv.v2.create_or_update_secret(path=seed.path, mount_point=seed.mount,
                                                     secret={k.name: "value-" + k.name for k in seed.keys})
    for consumer in CONSUMERS:
        client.sys.create_or_update_acl_policy(consumer, consumer_policy_hcl(consumer))
    client.sys.create_or_update_acl_policy("cmp-seeder", seeder_policy_hcl())
    client.sys.create_or_update_acl_policy("verify-policies", POLICY_READ)
    token = client.auth.token.create(policies=["cmp-seeder", "verify-policies"], ttl="10m")["auth"]["client_token"]
    return bao, token


def checks(bao, token):
    return {c.name: c for c in vault.check(target({}, vault_addr=bao.addr, env={"VAULT_TOKEN": token}))}


def test_a_seeded_vault_is_all_ok_and_no_secret_value_is_read(deployed):
    bao, token = deployed
    before = len(bao.audit_paths())
    found = checks(bao, token)
    assert {n: c.status for n, c in found.items()} == {
        **{f"vault seed secret/{s.path}": Status.OK for s in SEED_PATHS},
        **{f"vault policy {c}": Status.OK for c in CONSUMERS}}
    read = bao.audit_paths()[before:]
    assert sorted(set(read)) == sorted({f"secret/metadata/{s.path}" for s in SEED_PATHS}
                                       | {f"sys/policies/acl/{c}" for c in CONSUMERS})
    assert not [p for p in read if "/data/" in p]


def test_a_missing_seed_and_a_deleted_version_fail_naming_the_path(deployed):
    bao, token = deployed
    client = bao.client()
    client.secrets.kv.v2.delete_metadata_and_all_versions(path="cmp/runner", mount_point="secret")
    client.secrets.kv.v2.delete_latest_version_of_secret(path="cmp/minio", mount_point="secret")
    found = checks(bao, token)
    assert found["vault seed secret/cmp/runner"].status is Status.FAIL
    assert found["vault seed secret/cmp/runner"].reason == "does not exist (pulumi up seeds it)"
    assert found["vault seed secret/cmp/minio"].status is Status.FAIL
    assert "is deleted or destroyed" in found["vault seed secret/cmp/minio"].reason
    assert found["vault seed secret/cmp/connector"].status is Status.OK


def test_a_widened_or_missing_policy_fails(deployed):
    bao, token = deployed
    client = bao.client()
    widened = consumer_policy_hcl("cmp-connector").replace('["read"]', '["read", "list"]', 1)
    client.sys.create_or_update_acl_policy("cmp-connector", widened)
    client.sys.delete_acl_policy("cmp-provisioner")
    found = checks(bao, token)
    assert found["vault policy cmp-connector"].status is Status.FAIL
    assert found["vault policy cmp-connector"].reason == (
        "differs from the declared policy: line 3 is 'capabilities = [\"read\", \"list\"]', "
        "the program declares 'capabilities = [\"read\"]'")
    assert found["vault policy cmp-provisioner"].reason == "does not exist (pulumi up creates it)"
    assert found["vault policy cmp-external-secrets"].status is Status.OK


def test_no_token_or_no_vault_is_one_fail_line(bao):
    assert [c.status for c in vault.check(target({}, vault_addr=bao.addr))] == [Status.FAIL]
    down = vault.check(target({}, vault_addr="http://127.0.0.1:9", env={"VAULT_TOKEN": "t"}))
    assert [(c.status, c.reason) for c in down] == [
        (Status.FAIL, "Vault at http://127.0.0.1:9 unreachable (ConnectError)")]
