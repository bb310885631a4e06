"""VaultProgramKey against a real OpenBao: the Saleor app token written beside a path's seeded keys, rewritten
when the app's token changes, kept by the seed provider's own writes, and removed on destroy."""

from __future__ import annotations

from pulumi.dynamic import Config, ConfigureRequest

from components.vault import kv
from components.vault.program_key import VaultProgramKeyProvider
from tests.components.vault.conftest import configured_provider, seed_props

GEN = {"name": "service_jwt_secret", "source": "generated"}


def writer(openbao) -> VaultProgramKeyProvider:
    provider = VaultProgramKeyProvider()
    provider.configure(ConfigureRequest(Config(raw_config={"vault:address": openbao.addr,
                                                           "vault:token": openbao.root_token},
                                               project_name="cmp-platform")))
    return provider


def data(openbao, path: str) -> dict:
    return kv.read_state(openbao.client(), None, "secret", path).data


def props(path: str, value: str) -> dict:
    return {"mount": "secret", "path": path, "key": "saleor_app_token", "value": value}


def test_the_token_lands_beside_the_seeded_keys_and_follows_the_app(openbao, unique_path):
    seeds = configured_provider(openbao.addr, openbao.root_token)
    seeds.create(seed_props(unique_path, [GEN]))
    generated = data(openbao, unique_path)["service_jwt_secret"]
    key_writer = writer(openbao)
    created = key_writer.create(props(unique_path, "token-of-app-1"))
    assert created.id == f"secret/{unique_path}#saleor_app_token"
    assert data(openbao, unique_path) == {"service_jwt_secret": generated, "saleor_app_token": "token-of-app-1"}

    olds, news = created.outs, props(unique_path, "token-of-app-2")  # the app was replaced: a new token
    assert key_writer.diff(created.id, olds, news).changes
    assert not key_writer.diff(created.id, olds, props(unique_path, "token-of-app-1")).changes
    key_writer.update(created.id, olds, news)
    assert data(openbao, unique_path)["saleor_app_token"] == "token-of-app-2"

    rotate = seed_props(unique_path, [{**GEN, "rotation": "2026-12-07"}])
    seeds.update(f"secret/{unique_path}", seeds.create(seed_props(unique_path, [GEN])).outs, rotate)
    after = data(openbao, unique_path)
    assert after["saleor_app_token"] == "token-of-app-2" and after["service_jwt_secret"] != generated

    key_writer.delete(created.id, news)
    assert "saleor_app_token" not in data(openbao, unique_path)
    assert "service_jwt_secret" in data(openbao, unique_path)


def test_drift_shows_in_a_refresh(openbao, unique_path):
    key_writer = writer(openbao)
    created = key_writer.create(props(unique_path, "token-a"))
    openbao.client().secrets.kv.v2.create_or_update_secret(path=unique_path, secret={"saleor_app_token": "hand"},
                                                           mount_point="secret")
    read = key_writer.read(created.id, created.outs)
    assert read.outs["value"] == "hand"
    assert key_writer.diff(created.id, read.outs, props(unique_path, "token-a")).changes
