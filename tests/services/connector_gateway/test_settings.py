"""Settings: the ConfigMap's names, defaults pinned to the Vault path table, readable errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.vault.paths import CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT
from service_src.connector_gateway import cli
from service_src.connector_gateway.settings import GatewaySettings

BASE = {"CONTROL_PLANE_URL": "http://cp.cmp.svc:8080", "SERVICE_JWT_SECRET": "x" * 32}


def test_defaults_match_the_vault_path_table_and_the_configmap_contract(monkeypatch):
    for key, value in BASE.items():
        monkeypatch.setenv(key, value)
    s = GatewaySettings()
    assert (s.vault_connector_mount, s.vault_connector_prefix) == (CONNECTOR_MOUNT, CONNECTOR_CREDENTIALS_PREFIX)
    assert (s.vault_auth_method, s.vault_k8s_auth_mount, s.vault_k8s_role) == ("kubernetes", "kubernetes",
                                                                               "cmp-connector")
    assert (s.vault_timeout_seconds, s.credential_cache_ttl_seconds, s.cp_timeout_seconds) == (2, 30, 5)
    assert (s.policy_enforcement, s.policy_cache_grace_seconds) == (True, 300)
    assert (s.connector_timeout_seconds, s.connector_max_retries, s.rate_limit_requests_per_minute) == (10, 2, 600)
    assert (s.max_body_bytes, s.port, s.audit_log, s.log_level) == (65536, 8000, "stdout", "INFO")
    assert s.zendesk_base_url == "https://{subdomain}.zendesk.com"
    assert (s.slack_base_url, s.hubspot_base_url) == ("https://slack.com/api", "https://api.hubapi.com")


def test_environment_names_are_read(monkeypatch):
    env = {**BASE, "VAULT_AUTH_METHOD": "token", "VAULT_TOKEN": "t", "POLICY_ENFORCEMENT": "false",
           "RATE_LIMIT_REQUESTS_PER_MINUTE": "42", "VAULT_CONNECTOR_PREFIX": "tenants/connectors"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = GatewaySettings()
    assert (s.policy_enforcement, s.rate_limit_requests_per_minute, s.vault_connector_prefix) == (
        False, 42, "tenants/connectors")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"VAULT_AUTH_METHOD": "token"}, "VAULT_TOKEN is required"),
        ({"VAULT_AUTH_METHOD": "approle"}, "vault_auth_method"),
        ({"SERVICE_JWT_SECRET": "short"}, "at least 16"),
        ({"CONTROL_PLANE_URL": "cp:8080"}, "CONTROL_PLANE_URL must start with http"),
        ({"VAULT_CONNECTOR_PREFIX": "connectors/../x"}, "VAULT_CONNECTOR_PREFIX must be a clean Vault path"),
        ({"MAX_BODY_BYTES": "10"}, "max_body_bytes"),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, fragment):
    for key, value in {**BASE, **env}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as exc:
        GatewaySettings()
    assert fragment in str(exc.value)


def test_cli_exits_2_with_one_line_per_bad_setting(monkeypatch, capsys):
    monkeypatch.delenv("CONTROL_PLANE_URL", raising=False)
    monkeypatch.setenv("SERVICE_JWT_SECRET", "x" * 32)
    assert cli.main([]) == 2
    assert "CONTROL_PLANE_URL: Field required" in capsys.readouterr().err


def test_policy_enforcement_off_lists_every_tool_but_keeps_the_tenant_prefix(start_gateway, seeded_openbao):
    gw = start_gateway(policy_enforcement=False)
    before = len(seeded_openbao.audit_paths())
    r = gw.invoke("hubspot.create_contact", {"binding": "crm2", "arguments": {"email": "z@z.test"}})
    assert r.status_code == 424  # acme/support has no crm2 credentials; acme/sales's are never read
    assert [p for p in seeded_openbao.audit_paths()[before:] if p.startswith("kv/")] == [
        "kv/data/connectors/acme/support/crm2"]


CONFIGMAP_NAMES = [
    "LOG_LEVEL", "CONTROL_PLANE_URL", "CP_TIMEOUT_SECONDS", "MAX_BODY_BYTES", "PORT", "VAULT_ADDR",
    "VAULT_AUTH_METHOD", "VAULT_K8S_AUTH_MOUNT", "VAULT_K8S_ROLE", "VAULT_CONNECTOR_MOUNT",
    "VAULT_CONNECTOR_PREFIX", "VAULT_TIMEOUT_SECONDS", "CREDENTIAL_CACHE_TTL_SECONDS", "POLICY_ENFORCEMENT",
    "POLICY_CACHE_GRACE_SECONDS", "CONNECTOR_TIMEOUT_SECONDS", "CONNECTOR_MAX_RETRIES",
    "RATE_LIMIT_REQUESTS_PER_MINUTE", "ZENDESK_BASE_URL", "SLACK_BASE_URL", "HUBSPOT_BASE_URL", "AUDIT_LOG",
    "SERVICE_JWT_SECRET", "VAULT_TOKEN",
]


def test_every_contract_variable_is_a_setting():
    fields = {name.upper() for name in GatewaySettings.model_fields}
    assert set(CONFIGMAP_NAMES) <= fields, set(CONFIGMAP_NAMES) - fields


def test_configmap_style_strings_parse(monkeypatch):
    env = {**BASE, "LOG_LEVEL": "DEBUG", "CP_TIMEOUT_SECONDS": "5", "POLICY_ENFORCEMENT": "true",
           "VAULT_TIMEOUT_SECONDS": "2", "CREDENTIAL_CACHE_TTL_SECONDS": "30", "POLICY_CACHE_GRACE_SECONDS": "300",
           "CONNECTOR_TIMEOUT_SECONDS": "10", "CONNECTOR_MAX_RETRIES": "2", "PORT": "8000"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = GatewaySettings()
    assert (s.log_level, s.cp_timeout_seconds, s.policy_enforcement) == ("DEBUG", 5.0, True)
