"""The seed provider reads `cmp-platform:vault` through the program's own model: same rules, same errors."""

import json

import pytest

from components.vault.client import VaultSeedError, settings_from_config


def getter(values):
    return values.get


def test_explicit_address_and_timeout_from_the_section_and_token_from_provider_config():
    settings = settings_from_config(getter({
        "cmp-platform:vault": json.dumps({"address": "https://vault.example:8200", "timeoutSeconds": 2}),
        "vault:token": "s3cr3t-token"}), env={})
    assert (settings.address, settings.token, settings.timeout) == ("https://vault.example:8200", "s3cr3t-token", 2.0)
    assert "s3cr3t-token" not in repr(settings)


def test_the_models_in_cluster_default_address_is_not_used_by_the_provider():
    settings = settings_from_config(getter({"cmp-platform:vault": json.dumps({"deleteOnDestroy": True})}),
                                    env={"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_TOKEN": "t"})
    assert settings.address == "http://127.0.0.1:8200" and settings.timeout == 5.0


def test_vault_address_key_wins():
    settings = settings_from_config(getter({"vault:address": "https://a:8200", "cmp-platform:vault": json.dumps(
        {"address": "https://b:8200"})}), env={})
    assert settings.address == "https://a:8200"


@pytest.mark.parametrize(("section", "message"), [
    ({"secretMount": "a/b"}, "config error: cmp-platform:vault.secretMount = 'a/b': must be one Vault mount path"),
    ({"timeoutSeconds": 0}, "config error: cmp-platform:vault.timeoutSeconds = 0: Input should be greater than 0"),
    ({"adress": "x"}, "config error: cmp-platform:vault.adress = 'x': unknown key"),
])
def test_a_bad_section_is_the_programs_one_line_error(section, message):
    with pytest.raises(VaultSeedError) as excinfo:
        settings_from_config(getter({"cmp-platform:vault": json.dumps(section)}), env={})
    assert str(excinfo.value).startswith(message)
    assert "\n" not in str(excinfo.value)


def test_a_numeric_rotation_trigger_counts_as_its_text():
    """`pulumi config set --path 'cmp-platform:vault.rotations["cmp/connector.service_jwt_secret"]' 20261101`
    stores a number; it is the same trigger as the text."""
    from components.vault.config import VaultConfig

    config = VaultConfig.model_validate({"rotations": {"cmp/connector.service_jwt_secret": 20261101}})
    assert config.rotations == {"cmp/connector.service_jwt_secret": "20261101"}
