"""The seed provider through Pulumi's real dynamic-provider host (fresh process, cwd the project root)."""

from __future__ import annotations

import base64
import json

import grpc
import pytest

from components.vault import kv
from components.vault.paths import FINGERPRINT_KEY_PATH
from components.vault.seed_provider import VaultSeedProvider
from tests.components.vault.conftest import seed_props
from tests.support.provider_host import ProviderHost

GEN = {"name": "service_jwt_secret", "source": "generated"}
OPER = {"name": "database_url", "source": "operator", "configKey": "provisionerDatabaseUrl"}


def host_config(openbao, **extra) -> dict:
    # Structured config reaches the host as a JSON string, as the engine sends it.
    return {"vault:address": openbao.addr, "vault:token": openbao.root_token,
            "cmp-platform:vault": json.dumps({"timeoutSeconds": 3}), **extra}


def test_serialized_provider_holds_no_client_and_no_settings(openbao):
    serialized = ProviderHost.serialize(VaultSeedProvider())
    raw = base64.b64decode(serialized)
    for needle in (openbao.addr.encode(), openbao.root_token.encode(), b"hvac", b"requests", b"Session"):
        assert needle not in raw
    assert b"components.vault.seed_provider" in raw  # pickled by reference: the host imports the module


def test_check_create_diff_read_update_delete_through_the_host(openbao, unique_path):
    props = seed_props(unique_path, [GEN, OPER], delete_on_destroy=True)
    with ProviderHost(VaultSeedProvider()) as host:
        host.configure(host_config(openbao, **{"cmp-platform:provisionerDatabaseUrl": "postgresql://h/db"}))

        inputs, failures = host.check(props)
        assert failures == [] and inputs["path"] == unique_path

        id_, outs = host.create(inputs)
        assert id_ == f"secret/{unique_path}"
        data = kv.read_state(openbao.client(), None, "secret", unique_path).data
        assert data["database_url"] == "postgresql://h/db" and len(data["service_jwt_secret"]) >= 43
        assert outs["version"] == 1 and sorted(outs["fingerprints"]) == ["database_url", "service_jwt_secret"]

        assert host.diff(id_, outs, inputs)["changes"] is False
        rotated = seed_props(unique_path, [{**GEN, "rotation": "r2"}, OPER], delete_on_destroy=True)
        assert host.diff(id_, outs, rotated)["changes"] is True
        moved = seed_props(unique_path + "x", [GEN, OPER], delete_on_destroy=True)
        assert set(host.diff(id_, outs, moved)["replaces"]) == {"path"}

        openbao.client().secrets.kv.v2.create_or_update_secret(
            path=unique_path, secret={"database_url": "postgresql://h/db"}, mount_point="secret"
        )
        read_id, refreshed = host.read(id_, outs)
        assert read_id == id_ and refreshed["missing"] == ["service_jwt_secret"]
        assert host.diff(id_, refreshed, inputs)["changes"] is True  # drift: next up reseeds

        updated = host.update(id_, refreshed, inputs)
        assert updated["missing"] == [] and updated["version"] == 3
        reseeded = kv.read_state(openbao.client(), None, "secret", unique_path).data["service_jwt_secret"]

        host.delete(id_, updated)
        assert kv.read_state(openbao.client(), None, "secret", unique_path).version == 0
    logs = host.stderr()
    fp_key = kv.read_state(openbao.client(), None, "secret", FINGERPRINT_KEY_PATH).data["hmac_key"]
    everything = json.dumps([outs, refreshed, updated]) + logs
    for value in (data["service_jwt_secret"], reseeded, "postgresql://h/db", fp_key, openbao.root_token):
        assert value not in everything


def test_check_failures_name_the_field(openbao):
    bad = {"mount": "secret", "path": "cmp//x", "keys": [{"name": "Bad-Name", "source": "generated"},
                                                          {"name": "fixed_one", "source": "fixed"}]}
    with ProviderHost(VaultSeedProvider()) as host:
        host.configure(host_config(openbao))
        _, failures = host.check(bad)
    by_field = dict(failures)
    assert "path" in by_field and "'cmp//x'" in by_field["path"]
    assert "keys[0].name" in by_field and "needs a non-empty value" in by_field["keys[1]"]


def test_host_error_names_the_operator_key_and_holds_no_secret(openbao, unique_path):
    with ProviderHost(VaultSeedProvider()) as host:
        host.configure(host_config(openbao))
        with pytest.raises(grpc.RpcError) as err:
            host.create(seed_props(unique_path, [GEN, OPER]))
    details = err.value.details()
    assert "pulumi config set --secret cmp-platform:provisionerDatabaseUrl" in details
    assert openbao.root_token not in details
    assert kv.read_state(openbao.client(), None, "secret", unique_path).version == 0
