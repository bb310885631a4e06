"""The seed provider against a real OpenBao: seed if absent, merge, rotation, drift, destroy, and bad input."""

from __future__ import annotations

import json
import logging
import socket
import threading

import pytest

from components.vault import kv
from components.vault.client import VaultSeedError
from components.vault.paths import FINGERPRINT_KEY_PATH
from tests.components.vault.conftest import configured_provider, seed_props
from tests.support.net import free_port

GEN = {"name": "service_jwt_secret", "source": "generated"}
FIXED = {"name": "access_key", "source": "fixed", "value": "cmp-artifacts"}
OPER = {"name": "database_url", "source": "operator", "configKey": "provisionerDatabaseUrl"}


def vault_data(openbao, path: str, mount: str = "secret") -> tuple[int, dict]:
    state = kv.read_state(openbao.client(), None, mount, path)
    return state.version, state.data


@pytest.fixture
def provider(openbao):
    return configured_provider(openbao.addr, openbao.root_token, provisionerDatabaseUrl="postgresql://db/x")


def test_create_seeds_every_source_and_keeps_values_out_of_outputs(openbao, provider, unique_path):
    id_, outs = (r := provider.create(seed_props(unique_path, [GEN, FIXED, OPER]))).id, r.outs
    version, data = vault_data(openbao, unique_path)
    assert id_ == f"secret/{unique_path}"
    assert version == outs["version"] == 1
    assert data["access_key"] == "cmp-artifacts"
    assert data["database_url"] == "postgresql://db/x"
    assert len(data["service_jwt_secret"]) >= 43  # 32 random bytes, urlsafe base64
    assert outs["present"] == ["service_jwt_secret", "access_key", "database_url"]
    assert outs["owned"] == sorted(outs["present"]) and outs["missing"] == []
    assert set(outs["fingerprints"]) == set(outs["present"])
    assert all(fp.startswith("hmac-sha256:") for fp in outs["fingerprints"].values())
    dumped = json.dumps(outs)
    for value in data.values():
        if value != "cmp-artifacts":  # the fixed value is public table data
            assert value not in dumped


def test_preexisting_value_survives_create_and_is_not_rewritten(openbao, provider, unique_path):
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=unique_path, secret={"service_jwt_secret": "set-by-hand", "other": "kept"}, mount_point="secret"
    )
    outs = provider.create(seed_props(unique_path, [GEN, FIXED])).outs
    version, data = vault_data(openbao, unique_path)
    assert data == {"service_jwt_secret": "set-by-hand", "other": "kept", "access_key": "cmp-artifacts"}
    assert version == outs["version"] == 2
    assert outs["owned"] == ["access_key"]  # never claims a value it did not write

    again = provider.create(seed_props(unique_path, [GEN, FIXED])).outs  # everything present: no write
    assert again["version"] == 2 and vault_data(openbao, unique_path)[0] == 2


def test_first_write_uses_cas_zero(openbao, provider, unique_path, monkeypatch):
    seen = []
    real = kv.write_cas

    def spy(client, settings, mount, path, data, cas):
        seen.append((path, cas))
        return real(client, settings, mount, path, data, cas)

    monkeypatch.setattr(kv, "write_cas", spy)
    provider.create(seed_props(unique_path, [GEN]))
    assert (unique_path, 0) in seen


def test_added_key_is_merged_and_rotation_rewrites_only_its_key(openbao, provider, unique_path):
    first = provider.create(seed_props(unique_path, [GEN])).outs
    _, before = vault_data(openbao, unique_path)

    news = seed_props(unique_path, [GEN, {"name": "saleor_webhook_secret", "source": "generated"}])
    assert provider.diff(f"secret/{unique_path}", first, news).changes is True
    added = provider.update(f"secret/{unique_path}", first, news).outs
    _, after_add = vault_data(openbao, unique_path)
    assert after_add["service_jwt_secret"] == before["service_jwt_secret"]
    assert added["fingerprints"]["service_jwt_secret"] == first["fingerprints"]["service_jwt_secret"]
    assert added["version"] == 2

    same = provider.update(f"secret/{unique_path}", added, news).outs  # no trigger, nothing missing: no new version
    assert same["version"] == 2
    assert provider.diff(f"secret/{unique_path}", added, news).changes is False

    rotated_news = seed_props(
        unique_path, [{**GEN, "rotation": "2026-11"}, {"name": "saleor_webhook_secret", "source": "generated"}]
    )
    assert provider.diff(f"secret/{unique_path}", added, rotated_news).changes is True
    rotated = provider.update(f"secret/{unique_path}", added, rotated_news).outs
    version, after_rot = vault_data(openbao, unique_path)
    assert version == rotated["version"] == 3
    assert after_rot["service_jwt_secret"] != after_add["service_jwt_secret"]
    assert after_rot["saleor_webhook_secret"] == after_add["saleor_webhook_secret"]
    assert rotated["fingerprints"]["service_jwt_secret"] != added["fingerprints"]["service_jwt_secret"]
    assert rotated["fingerprints"]["saleor_webhook_secret"] == added["fingerprints"]["saleor_webhook_secret"]


def test_read_reports_a_key_deleted_out_of_band_and_next_up_reseeds_it(openbao, provider, unique_path):
    props = seed_props(unique_path, [GEN, FIXED])
    outs = provider.create(props).outs
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=unique_path, secret={"access_key": "cmp-artifacts"}, mount_point="secret"
    )
    read = provider.read(f"secret/{unique_path}", outs)
    assert read.id == f"secret/{unique_path}"
    assert read.outs["missing"] == ["service_jwt_secret"] and read.outs["present"] == ["access_key"]
    assert provider.diff(read.id, read.outs, props).changes is True
    provider.update(read.id, read.outs, props)
    _, data = vault_data(openbao, unique_path)
    assert len(data["service_jwt_secret"]) >= 43 and data["access_key"] == "cmp-artifacts"


def test_read_after_whole_secret_deleted_reports_everything_missing(openbao, provider, unique_path):
    outs = provider.create(seed_props(unique_path, [GEN])).outs
    openbao.client().secrets.kv.v2.delete_metadata_and_all_versions(path=unique_path, mount_point="secret")
    read = provider.read(f"secret/{unique_path}", outs)
    assert read.outs["missing"] == ["service_jwt_secret"] and read.outs["version"] == 0


def test_delete_leaves_secrets_unless_delete_on_destroy(openbao, provider, unique_path):
    outs = provider.create(seed_props(unique_path, [GEN])).outs
    provider.delete(f"secret/{unique_path}", outs)
    assert vault_data(openbao, unique_path)[1].keys() == {"service_jwt_secret"}

    gone = provider.create(seed_props(unique_path + "-b", [GEN], delete_on_destroy=True)).outs
    provider.delete(f"secret/{unique_path}-b", gone)
    assert vault_data(openbao, unique_path + "-b") == (0, {})


def test_delete_on_destroy_keeps_values_it_did_not_write(openbao, provider, unique_path):
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=unique_path, secret={"service_jwt_secret": "set-by-hand"}, mount_point="secret"
    )
    outs = provider.create(seed_props(unique_path, [GEN, FIXED], delete_on_destroy=True)).outs
    provider.delete(f"secret/{unique_path}", outs)
    version, data = vault_data(openbao, unique_path)
    assert data == {"service_jwt_secret": "set-by-hand"}
    # the removed key's old versions are destroyed, not just superseded
    old = openbao.client().secrets.kv.v2.read_secret_metadata(path=unique_path, mount_point="secret")["data"]
    assert all(old["versions"][str(v)]["destroyed"] for v in range(1, version))


def test_missing_operator_key_fails_naming_the_config_command_and_writes_nothing(openbao, unique_path):
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=unique_path, secret={"other": "kept"}, mount_point="secret"
    )
    provider = configured_provider(openbao.addr, openbao.root_token)  # provisionerDatabaseUrl not set
    with pytest.raises(VaultSeedError) as err:
        provider.create(seed_props(unique_path, [GEN, OPER]))
    assert "pulumi config set --secret cmp-platform:provisionerDatabaseUrl" in str(err.value)
    assert "database_url" in str(err.value)
    assert vault_data(openbao, unique_path) == (1, {"other": "kept"})


def test_operator_key_already_in_vault_needs_no_stack_secret(openbao, unique_path):
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=unique_path, secret={"database_url": "set-in-vault"}, mount_point="secret"
    )
    provider = configured_provider(openbao.addr, openbao.root_token)
    outs = provider.create(seed_props(unique_path, [GEN, OPER])).outs
    assert vault_data(openbao, unique_path)[1]["database_url"] == "set-in-vault"
    assert outs["missing"] == []


def test_concurrent_write_loses_nothing(openbao, provider, unique_path, monkeypatch):
    """A writer between our read and our write makes cas fail: their value stays, ours is not written."""
    real = kv.read_state

    def racing_read(client, settings, mount, path):
        state = real(client, settings, mount, path)
        if path == unique_path:
            openbao.client().secrets.kv.v2.create_or_update_secret(
                path=unique_path, secret={"service_jwt_secret": "theirs"}, mount_point="secret"
            )
        return state

    monkeypatch.setattr(kv, "read_state", racing_read)
    with pytest.raises(VaultSeedError, match="changed while seeding"):
        provider.create(seed_props(unique_path, [GEN]))
    monkeypatch.undo()
    assert vault_data(openbao, unique_path) == (1, {"service_jwt_secret": "theirs"})


def test_kv_version_1_mount_is_refused(openbao, unique_path):
    mount = "kv1-" + unique_path.split("/")[1]
    openbao.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    provider = configured_provider(openbao.addr, openbao.root_token)
    with pytest.raises(VaultSeedError, match=f"mount '{mount}' .* is KV version 1; seeds need KV version 2"):
        provider.create(seed_props("cmp/connector", [GEN], mount=mount))
    assert openbao.client().adapter.get(f"/v1/{mount}/cmp/connector", raise_exception=False).status_code == 404


def test_missing_mount_is_named(openbao):
    provider = configured_provider(openbao.addr, openbao.root_token)
    with pytest.raises(VaultSeedError, match="no secrets engine is mounted at 'nomount'"):
        provider.create(seed_props("cmp/connector", [GEN], mount="nomount"))


def test_permission_denied_names_path_and_policy(openbao, unique_path):
    root = openbao.client()
    name = "ro-" + unique_path.split("/")[1]
    root.sys.create_or_update_policy(
        name, f'path "secret/data/{unique_path}" {{ capabilities = ["read"] }}\n'
        f'path "secret/metadata/{unique_path}" {{ capabilities = ["read"] }}\n'
    )
    token = root.auth.token.create(policies=[name], ttl="5m")["auth"]["client_token"]
    provider = configured_provider(openbao.addr, token)
    with pytest.raises(VaultSeedError) as err:
        provider.create(seed_props(unique_path, [GEN]))
    message = str(err.value)
    assert f"secret/data/{unique_path}" in message
    assert 'capabilities = ["create", "read", "update"]' in message
    assert token not in message
    assert vault_data(openbao, unique_path) == (0, {})


def test_unreachable_vault_names_address_and_timeout():
    addr = f"http://127.0.0.1:{free_port()}"
    provider = configured_provider(addr, "t", timeout=0.5)
    with pytest.raises(VaultSeedError) as err:
        provider.create(seed_props("cmp/connector", [GEN]))
    assert addr in str(err.value) and "timeout 0.5s" in str(err.value)


@pytest.mark.server
def test_silent_vault_names_address_and_timeout():
    """A server that accepts and never answers: the error says how long we waited."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    addr = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        provider = configured_provider(addr, "t", timeout=0.3)
        with pytest.raises(VaultSeedError, match=r"did not answer within the 0\.3s timeout"):
            provider.create(seed_props("cmp/connector", [GEN]))
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_missing_address_or_token_says_where_to_set_it(monkeypatch):
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    with pytest.raises(VaultSeedError, match="vault:address"):
        configured_provider("", "").create(seed_props("cmp/connector", [GEN]))
    with pytest.raises(VaultSeedError, match="vault:token"):
        configured_provider("http://127.0.0.1:1", "").create(seed_props("cmp/connector", [GEN]))


def test_no_generated_value_in_logs(openbao, provider, unique_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    outs = provider.create(seed_props(unique_path, [GEN, OPER])).outs
    news = seed_props(unique_path, [{**GEN, "rotation": "r1"}, OPER])
    outs2 = provider.update(f"secret/{unique_path}", outs, news).outs
    provider.read(f"secret/{unique_path}", outs2)
    _, data = vault_data(openbao, unique_path)
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert f"secret/{unique_path}" in logs  # the provider does log what it did
    _, fp_key = vault_data(openbao, FINGERPRINT_KEY_PATH)
    for value in [*data.values(), fp_key["hmac_key"]]:
        assert value not in logs


def test_refresh_reports_an_out_of_band_change_and_keeps_it(openbao, provider, unique_path, caplog):
    props = seed_props(unique_path, [GEN, FIXED])
    outs = provider.create(props).outs
    _, data = vault_data(openbao, unique_path)
    openbao.client().secrets.kv.v2.create_or_update_secret(
        path=unique_path, secret={**data, "access_key": "changed-by-hand-42"}, mount_point="secret"
    )
    caplog.set_level(logging.WARNING)
    read = provider.read(f"secret/{unique_path}", outs)
    assert read.outs["fingerprints"]["access_key"] != outs["fingerprints"]["access_key"]
    assert read.outs["fingerprints"]["service_jwt_secret"] == outs["fingerprints"]["service_jwt_secret"]
    assert "access_key changed outside Pulumi" in caplog.text
    assert provider.diff(read.id, read.outs, props).changes is False  # a changed value is not reverted
    assert "changed-by-hand-42" not in caplog.text and data["service_jwt_secret"] not in caplog.text


def test_refresh_writes_nothing(openbao, unique_path):
    mount = "ro-" + unique_path.split("/")[1]
    root = openbao.client()
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    root.secrets.kv.v2.create_or_update_secret(path="cmp/x", secret={"service_jwt_secret": "v"}, mount_point=mount)
    provider = configured_provider(openbao.addr, openbao.root_token)
    props = {**seed_props("cmp/x", [GEN], mount=mount), "present": ["service_jwt_secret"], "owned": []}
    read = provider.read(f"{mount}/cmp/x", props)
    assert read.outs["present"] == ["service_jwt_secret"] and read.outs["fingerprints"] == {}
    assert kv.read_state(root, None, mount, FINGERPRINT_KEY_PATH).version == 0
