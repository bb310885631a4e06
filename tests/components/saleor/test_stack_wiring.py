"""SaleorWebhooks in the real program: wired to the Provisioner's URLs, and the `saleor` section validated by
one model, the same for the program and the provider."""

from __future__ import annotations

import pytest

from components.provisioner.component import webhook_urls
from components.saleor.config import SaleorConfig, SaleorTuning
from components.saleor.documents import ORDER_EVENTS
from components.saleor.settings import SettingsError, settings_from
from infra.config import ConfigError
from stacks.config import parse_stack_config
from tests.components.helpers import base_config, run_platform
from tests.stacks.test_config import MINIMAL, SECRETS

HOOK_TYPE = "pulumi-python:dynamic/saleor:SaleorWebhook"


@pytest.mark.parametrize("namespace", ["cmp", "shop"])
def test_platform_aims_the_webhooks_at_the_provisioner(namespace):
    recording = run_platform(base_config(namespace=namespace))
    (component,) = recording.by_type("cmp:platform:SaleorWebhooks")
    hooks = recording.by_type(HOOK_TYPE)
    assert {h.inputs["target_url"] for h in hooks} == set(webhook_urls(namespace).values())
    assert all(h.parent == component.urn for h in hooks) and len(hooks) == len(ORDER_EVENTS)
    assert all(f"cmp-provisioner.{namespace}.svc.cluster.local:8000" in h.inputs["target_url"] for h in hooks)
    assert "saleorAppId" in recording.outputs


def test_tuning_is_validated_with_the_stack_config():
    cfg = parse_stack_config({**MINIMAL, "saleor": {**MINIMAL["saleor"], "tuning": {"maxAttempts": 2}}}, SECRETS)
    assert cfg.saleor.tuning == SaleorTuning(max_attempts=2)
    with pytest.raises(ConfigError, match=r"saleor\.tuning\.maxAtempts"):
        parse_stack_config({**MINIMAL, "saleor": {**MINIMAL["saleor"], "tuning": {"maxAtempts": 2}}}, SECRETS)


def test_provider_reads_the_same_section_the_program_validates():
    section = {**MINIMAL["saleor"], "tuning": {"maxAttempts": 2, "schemaVersion": "3.23"}}
    settings = settings_from({"cmp-platform:saleor": section, "cmp-platform:saleorStaffPassword": "pw"}, env={})
    assert settings.config.api_url == section["apiUrl"] and settings.config.tuning.max_attempts == 2
    assert settings.versions == ("3.23",) and "pw" not in repr(settings)


def test_program_and_provider_share_one_model_and_its_rules():
    section = {**MINIMAL["saleor"], "staffEmail": "not-an-email"}
    with pytest.raises(ConfigError, match=r"cmp-platform:saleor\.staffEmail = 'not-an-email': must be an e-mail"):
        parse_stack_config({**MINIMAL, "saleor": section}, SECRETS)
    with pytest.raises(SettingsError, match=r"cmp-platform:saleor\.staffEmail = 'not-an-email': must be an e-mail"):
        settings_from({"cmp-platform:saleor": section, "cmp-platform:saleorStaffPassword": "pw"}, env={})
    with pytest.raises(SettingsError, match=r"cmp-platform:saleor\.tuning\.maxAtempts = 2: unknown key"):
        settings_from({"cmp-platform:saleor": {**MINIMAL["saleor"], "tuning": {"maxAtempts": 2}},
                       "cmp-platform:saleorStaffPassword": "pw"}, env={})
    cfg = parse_stack_config(MINIMAL, SECRETS)
    assert type(cfg.saleor) is SaleorConfig and cfg.saleor.origin == "https://saleor.example.com"


@pytest.mark.parametrize("value", [True, False])
def test_legacy_hmac_switch_is_gone_and_says_jws(value):
    # The webhooks never get a secret key, so Saleor signs with JWS; the old switch is one line pointing there.
    raw = {**MINIMAL, "provisioner": {"saleorLegacyHmac": value}}
    with pytest.raises(ConfigError) as info:
        parse_stack_config(raw, SECRETS)
    message = str(info.value)
    assert message.startswith(f"config error: cmp-platform:provisioner.saleorLegacyHmac = {str(value).lower()}:")
    assert "JWS" in message  # the provisioner's own rule: SALEOR_LEGACY_HMAC is refused whenever set
    assert "\n" not in message


def test_deployed_provisioner_verifies_jws_only():
    recording = run_platform(base_config())
    (config_map,) = [r for r in recording.by_type("kubernetes:core/v1:ConfigMap")
                     if r.inputs["metadata"]["name"] == "cmp-provisioner-config"]
    assert "SALEOR_LEGACY_HMAC" not in config_map.inputs["data"]  # the provisioner refuses it set at all
    assert all("secret_key" not in h.inputs for h in recording.by_type(HOOK_TYPE))
