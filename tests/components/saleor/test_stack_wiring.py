"""SaleorWebhooks in the real program (infra.program.main): wired to the Provisioner's URLs, and the
`saleor.tuning` config section validated with the rest of the stack config."""

from __future__ import annotations

import pytest

from components.provisioner.component import webhook_urls
from components.saleor.documents import ORDER_EVENTS
from components.saleor.settings import SaleorTuning, settings_from
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
