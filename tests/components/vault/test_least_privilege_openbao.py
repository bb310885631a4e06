"""The generated policies on a real OpenBao: each consumer's token reads exactly its paths, nothing else."""

from __future__ import annotations

import secrets

import hvac
import hvac.exceptions
import pytest

from components.vault.paths import (
    CONNECTOR_CREDENTIALS_PREFIX,
    FINGERPRINT_KEY_PATH,
    SEED_PATHS,
)
from components.vault.policies import (
    CONSUMERS,
    Mounts,
    consumer_paths,
    consumer_policy_hcl,
    consumer_write_paths,
    seeder_policy_hcl,
)
from components.vault.seeds import seed_props
from tests.components.vault.conftest import configured_provider

TENANTS = ("org-a/proj-1/zendesk", "org-b/proj-9/slack")
EXPECTED = {
    "cmp-connector": {"secret:cmp/connector", *(f"kv:{CONNECTOR_CREDENTIALS_PREFIX}/{t}" for t in TENANTS)},
    "cmp-provisioner": {"secret:cmp/provisioner"},
    "cmp-external-secrets": {"secret:cmp/connector", "secret:cmp/provisioner"},
}


@pytest.fixture(scope="module")
def world(openbao):
    """Fresh mounts holding every table path, the fingerprint key and two tenants' credentials."""
    suffix = secrets.token_hex(4)
    mounts = Mounts(secret=f"lp-secret-{suffix}", kv=f"lp-kv-{suffix}")
    root = openbao.client()
    for mount in (mounts.secret, mounts.kv):
        root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    places = {}
    for seed in SEED_PATHS:
        places[f"secret:{seed.path}"] = (mounts.of(seed), seed.path)
    places[f"secret:{FINGERPRINT_KEY_PATH}"] = (mounts.secret, FINGERPRINT_KEY_PATH)
    for tenant in TENANTS:
        places[f"kv:{CONNECTOR_CREDENTIALS_PREFIX}/{tenant}"] = (mounts.kv, f"{CONNECTOR_CREDENTIALS_PREFIX}/{tenant}")
    places["kv:other/thing"] = (mounts.kv, "other/thing")
    places["kv:connectors-shadow/x"] = (mounts.kv, "connectors-shadow/x")
    for mount, path in places.values():
        root.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": path}, mount_point=mount)
    tokens = {}
    for consumer in CONSUMERS:
        name = f"{consumer}-{suffix}"
        root.sys.create_or_update_policy(name, consumer_policy_hcl(consumer, mounts))
        tokens[consumer] = root.auth.token.create(policies=[name], ttl="10m", no_default_policy=True)["auth"][
            "client_token"]
    return mounts, places, tokens


def can_read(client: hvac.Client, mount: str, path: str) -> bool:
    try:
        client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
        return True
    except hvac.exceptions.Forbidden:
        return False


def can_write(client: hvac.Client, mount: str, path: str) -> bool:
    try:
        client.secrets.kv.v2.create_or_update_secret(path=path, secret={"v": "overwritten"}, mount_point=mount)
        return True
    except hvac.exceptions.Forbidden:
        return False


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_each_token_reads_exactly_its_paths(openbao, world, consumer):
    _, places, tokens = world
    client = openbao.client(tokens[consumer])
    readable = {label for label, (mount, path) in places.items() if can_read(client, mount, path)}
    assert readable == EXPECTED[consumer]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_no_token_writes_lists_or_deletes(openbao, world, consumer):
    _, places, tokens = world
    client = openbao.client(tokens[consumer])
    for label, (mount, path) in places.items():
        assert not can_write(client, mount, path), f"{consumer} could write {label}"
        caps = openbao.client().adapter.post("/v1/sys/capabilities", json={"token": tokens[consumer], "paths": [
            f"{mount}/data/{path}", f"{mount}/metadata/{path}", f"{mount}/delete/{path}",
            f"{mount}/destroy/{path}"]})["data"]
        assert caps[f"{mount}/data/{path}"] in (["read"], ["deny"]), label
        for verb in ("metadata", "delete", "destroy"):
            assert caps[f"{mount}/{verb}/{path}"] == ["deny"], f"{consumer} has {verb} on {label}"
    root = openbao.client()
    for mount, path in places.values():  # nothing was overwritten
        body = root.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
        assert body["data"]["data"] == {"v": path}


def test_tenant_credentials_need_the_connector_policy(openbao, world):
    """Another tenant's kv/data/connectors/{org}/... is closed to every token but the gateway's."""
    mounts, _, tokens = world
    for consumer in ("cmp-provisioner", "cmp-external-secrets"):
        client = openbao.client(tokens[consumer])
        for tenant in TENANTS:
            assert not can_read(client, mounts.kv, f"{CONNECTOR_CREDENTIALS_PREFIX}/{tenant}")
    assert consumer_paths("cmp-connector", mounts)[-1] == f"{mounts.kv}/data/{CONNECTOR_CREDENTIALS_PREFIX}/*"


def test_the_gateway_writes_only_a_per_user_credential_and_only_with_check_and_set_semantics(openbao, world):
    """A per-user connection's refreshed token goes back to users/{sub} under a binding; nothing else opens."""
    mounts, _, tokens = world
    client = openbao.client(tokens["cmp-connector"])
    user = f"{CONNECTOR_CREDENTIALS_PREFIX}/org-a/proj-1/zendesk/users/agent-1"
    openbao.client().secrets.kv.v2.create_or_update_secret(path=user, secret={"v": 1}, mount_point=mounts.kv)
    client.secrets.kv.v2.create_or_update_secret(path=user, secret={"v": 2}, cas=1, mount_point=mounts.kv)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        client.secrets.kv.v2.create_or_update_secret(path=user, secret={"v": 3}, cas=1, mount_point=mounts.kv)
    assert can_read(client, mounts.kv, user)
    for path in (f"{CONNECTOR_CREDENTIALS_PREFIX}/org-a/proj-1/zendesk",  # the binding's own credentials
                 f"{CONNECTOR_CREDENTIALS_PREFIX}/org-a/proj-1/zendesk/users",
                 f"{CONNECTOR_CREDENTIALS_PREFIX}/org-a/proj-1/zendesk/users/agent-1/deeper",
                 f"{CONNECTOR_CREDENTIALS_PREFIX}/org-a/proj-1/users/agent-1"):
        assert not can_write(client, mounts.kv, path), path
    caps = openbao.client().adapter.post("/v1/sys/capabilities", json={
        "token": tokens["cmp-connector"], "paths": [f"{mounts.kv}/metadata/{user}", f"{mounts.kv}/destroy/{user}"]})
    assert caps["data"][f"{mounts.kv}/metadata/{user}"] == ["deny"]
    assert caps["data"][f"{mounts.kv}/destroy/{user}"] == ["deny"]
    assert consumer_write_paths("cmp-provisioner", mounts) == consumer_write_paths("cmp-external-secrets") == ()


def test_seeder_policy_is_enough_to_seed_every_table_path(openbao, world):
    """The documented cmp-seeder policy lets `pulumi up` seed, read and destroy, and nothing more."""
    suffix = secrets.token_hex(4)
    mounts = Mounts(secret=f"sd-secret-{suffix}", kv=f"sd-kv-{suffix}")
    root = openbao.client()
    for mount in (mounts.secret, mounts.kv):
        root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    root.sys.create_or_update_policy(f"seeder-{suffix}", seeder_policy_hcl(mounts))
    token = root.auth.token.create(policies=[f"seeder-{suffix}"], ttl="10m", no_default_policy=True)["auth"][
        "client_token"]
    operator = {"provisionerDatabaseUrl": "postgresql://x/y", "langflowApiKey": "lf", "openaiApiKey": "oa"}
    provider = configured_provider(openbao.addr, token, **operator)
    for seed in SEED_PATHS:
        props = seed_props(seed, mounts.of(seed), {}, delete_on_destroy=True)
        outs = provider.create(props).outs
        assert outs["missing"] == []
        assert provider.read(f"{mounts.of(seed)}/{seed.path}", outs).outs["present"] == outs["present"]
        provider.delete(f"{mounts.of(seed)}/{seed.path}", outs)
    assert not can_read(openbao.client(token), mounts.secret, "cmp/elsewhere")
    assert not can_write(openbao.client(token), mounts.secret, "cmp/elsewhere")
