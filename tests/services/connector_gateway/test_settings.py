"""Settings: the ConfigMap's names, defaults pinned to the Vault path table, readable errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from components.vault.paths import CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT
from service_src.connector_gateway import cli
from service_src.connector_gateway.settings import GatewaySettings
from service_src.connector_gateway.vault import warn_about_local_setup
from tests.support.cli import assert_one_line_usage_error

BASE = {"CONTROL_PLANE_URL": "http://cp.cmp.svc:8080", "SERVICE_JWT_SECRET": "x" * 32,
        "CALLER_JWKS_URL": "http://cp.cmp.svc:8080/.well-known/jwks.json", "CALLER_ISSUER": "http://cp.cmp.svc:8080"}


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
    assert (s.caller_auth_mode, s.caller_audience, s.jwks_cache_ttl_seconds, s.jwks_min_refetch_seconds) == (
        "jwks", "cmp-connector-gateway", 300, 30)
    assert (s.resource_url, s.allowed_origins, s.authorization_server) == (
        "http://127.0.0.1:8000/mcp", frozenset(), "http://cp.cmp.svc:8080")
    assert (s.rate_limit_storage_url, s.rate_limit_storage_failure, s.rate_limit_storage_timeout_seconds) == (
        None, "open", 0.5)


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
        ({"VAULT_AUTH_METHOD": "token"}, "VAULT_AUTH_METHOD=token needs VAULT_TOKEN"),
        ({"VAULT_AUTH_METHOD": "approle"}, "vault_auth_method"),
        ({"SERVICE_JWT_SECRET": "short"}, "at least 16"),
        ({"CONTROL_PLANE_URL": "cp:8080"}, "CONTROL_PLANE_URL must start with http"),
        ({"VAULT_CONNECTOR_PREFIX": "connectors/../x"}, "VAULT_CONNECTOR_PREFIX must be a clean Vault path"),
        ({"MAX_BODY_BYTES": "10"}, "max_body_bytes"),
        ({"CALLER_JWKS_URL": "ftp://cp/jwks"}, "CALLER_JWKS_URL must be an http:// or https:// URL"),
        ({"CALLER_ISSUER": "cp"}, "CALLER_ISSUER must be an http:// or https:// URL"),
        ({"CALLER_AUTH_MODE": "none"}, "caller_auth_mode"),
        ({"MCP_RESOURCE_URL": "https://gw.example.com/mcp#x"}, "MCP_RESOURCE_URL must be"),
        ({"MCP_ALLOWED_ORIGINS": "https://a.example.com/path"}, "MCP_ALLOWED_ORIGINS entries must be origins"),
        ({"RATE_LIMIT_STORAGE_URL": "memcached://r:11211"}, "RATE_LIMIT_STORAGE_URL must be redis://"),
        ({"RATE_LIMIT_STORAGE_FAILURE": "maybe"}, "rate_limit_storage_failure"),
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


@pytest.mark.parametrize("argv", [["--bogus"], ["--port", "x"], ["nonsense"]])
def test_bad_arguments_are_one_line_with_the_usage(argv, capsys):
    from service_src.connector_gateway.cli import main

    assert_one_line_usage_error(main, argv, capsys, "cmp-connector-gateway")


def test_policy_enforcement_off_lists_every_tool_but_keeps_the_tenant_prefix(start_gateway, seeded_openbao):
    gw = start_gateway(policy_enforcement=False)
    before = len(seeded_openbao.audit_paths())
    r = gw.invoke("hubspot.create_contact", {"binding": "crm2", "arguments": {"email": "z@z.test"}})
    assert r.status_code == 424  # acme/support has no crm2 credentials; acme/sales's are never read
    assert [p for p in seeded_openbao.audit_paths()[before:] if p.startswith("kv/")] == [
        "kv/data/connectors/acme/support/crm2"]


def test_the_control_plane_is_the_default_key_source_and_issuer_in_jwks_mode(monkeypatch):
    monkeypatch.setenv("CONTROL_PLANE_URL", "http://cp.cmp.svc:8080/")
    monkeypatch.setenv("SERVICE_JWT_SECRET", "x" * 32)
    s = GatewaySettings()
    assert (s.caller_jwks_url, s.caller_issuer) == ("http://cp.cmp.svc:8080/.well-known/jwks.json",
                                                    "http://cp.cmp.svc:8080")
    monkeypatch.setenv("CALLER_AUTH_MODE", "hs256")
    s = GatewaySettings()
    assert (s.caller_jwks_url, s.caller_issuer, s.authorization_server) == (None, None, "http://cp.cmp.svc:8080")


def test_check_config_reads_the_services_environment_and_names_each_bad_variable(tmp_path):
    script = Path(sys.executable).with_name("cmp-connector-gateway")
    good = subprocess.run([script, "check-config"], env={"PATH": os.environ["PATH"], **BASE}, capture_output=True,
                          text=True, timeout=60)
    assert good.returncode == 0, good.stderr
    bad_env = {**BASE, "CALLER_JWKS_URL": "ftp://cp/jwks", "MAX_BODY_BYTES": "100", "VAULT_AUTH_METHOD": "token",
               "RATE_LIMIT_STORAGE_URL": "http://redis:6379"}
    bad = subprocess.run([script, "check-config"], env={"PATH": os.environ["PATH"], **bad_env},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "MAX_BODY_BYTES", "VAULT_AUTH_METHOD", "CALLER_JWKS_URL", "RATE_LIMIT_STORAGE_URL"], lines
    assert "greater than or equal to 256" in lines[0]
    assert "VAULT_AUTH_METHOD=token needs VAULT_TOKEN" in lines[1]


def test_a_local_run_with_only_vault_token_says_in_one_line_what_is_missing(monkeypatch, caplog, tmp_path):
    for key, value in {**BASE, "VAULT_TOKEN": "dev-root-token"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VAULT_K8S_TOKEN_PATH", str(tmp_path / "no-such-token"))
    caplog.set_level(logging.INFO)
    warn_about_local_setup(GatewaySettings())
    (line,) = [r.getMessage() for r in caplog.records]
    assert str(tmp_path / "no-such-token") in line
    assert "VAULT_AUTH_METHOD=token" in line and "VAULT_TOKEN is set but ignored" in line
    assert "dev-root-token" not in line
    caplog.clear()
    monkeypatch.setenv("VAULT_AUTH_METHOD", "token")
    warn_about_local_setup(GatewaySettings())
    assert caplog.records == []


CONFIGMAP_NAMES = [
    "LOG_LEVEL", "CONTROL_PLANE_URL", "CP_TIMEOUT_SECONDS", "MAX_BODY_BYTES", "PORT", "VAULT_ADDR",
    "VAULT_AUTH_METHOD", "VAULT_K8S_AUTH_MOUNT", "VAULT_K8S_ROLE", "VAULT_CONNECTOR_MOUNT",
    "VAULT_CONNECTOR_PREFIX", "VAULT_TIMEOUT_SECONDS", "CREDENTIAL_CACHE_TTL_SECONDS", "POLICY_ENFORCEMENT",
    "POLICY_CACHE_GRACE_SECONDS", "CONNECTOR_TIMEOUT_SECONDS", "CONNECTOR_MAX_RETRIES",
    "RATE_LIMIT_REQUESTS_PER_MINUTE", "ZENDESK_BASE_URL", "SLACK_BASE_URL", "HUBSPOT_BASE_URL", "AUDIT_LOG",
    "SERVICE_JWT_SECRET", "VAULT_TOKEN", "CALLER_AUTH_MODE", "CALLER_JWKS_URL", "CALLER_ISSUER", "CALLER_AUDIENCE",
    "JWKS_CACHE_TTL_SECONDS", "JWKS_MIN_REFETCH_SECONDS", "MCP_RESOURCE_URL", "MCP_ALLOWED_ORIGINS",
    "RATE_LIMIT_STORAGE_URL", "RATE_LIMIT_STORAGE_FAILURE", "RATE_LIMIT_STORAGE_TIMEOUT_SECONDS",
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
