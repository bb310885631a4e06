"""ConnectorGateway rendered by the real program: the objects a GitOps base held for it, and its environment."""

from __future__ import annotations

import pulumi
import pytest
from pydantic import ValidationError

from tests.components.helpers import base_config, run_platform
from tests.components.services import (
    CONFIG_MAP,
    DEPLOYMENT,
    EXTERNAL_SECRET,
    NETWORK_POLICY,
    SERVICE,
    reference_render,
    staging_like,
)


def test_connector_gateway_matches_the_reference():
    rec = reference_render()
    gateway = rec.one("cmp:platform:ConnectorGateway", "connector-gateway")
    workload = rec.one("cmp:platform:ServiceWorkload", "cmp-connector")
    assert workload.parent == gateway.urn
    deployment = rec.one(DEPLOYMENT, "cmp-connector").inputs
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "cmp-connector"
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    # Vault's Kubernetes auth needs the service-account token.
    assert pod["automountServiceAccountToken"] is True
    service = rec.one(SERVICE, "cmp-connector").inputs["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["port"] == 8000
    env = rec.one(CONFIG_MAP, "cmp-connector-config").inputs["data"]
    assert env == {
        "LOG_LEVEL": "INFO", "PORT": "8000",
        "CONTROL_PLANE_URL": "http://cmp-control-plane.cmp.svc.cluster.local:8000", "CP_TIMEOUT_SECONDS": "5",
        "MAX_BODY_BYTES": "65536", "MAX_RESULT_BYTES": "75000", "VAULT_ADDR": "http://vault.vault.svc.cluster.local:8200",
        "VAULT_AUTH_METHOD": "kubernetes", "VAULT_K8S_AUTH_MOUNT": "kubernetes", "VAULT_K8S_ROLE": "cmp-connector",
        "VAULT_CONNECTOR_MOUNT": "kv", "VAULT_CONNECTOR_PREFIX": "connectors", "VAULT_TIMEOUT_SECONDS": "2",
        "CREDENTIAL_CACHE_TTL_SECONDS": "30", "POLICY_ENFORCEMENT": "true", "POLICY_CACHE_GRACE_SECONDS": "300",
        "CONNECTOR_TIMEOUT_SECONDS": "10", "CONNECTOR_MAX_RETRIES": "2", "RATE_LIMIT_REQUESTS_PER_MINUTE": "600",
        "ZENDESK_BASE_URL": "https://{subdomain}.zendesk.com", "SLACK_BASE_URL": "https://slack.com/api",
        "HUBSPOT_BASE_URL": "https://api.hubapi.com", "AUDIT_LOG": "stdout",
        # Callers are verified against the control plane's JWKS; /mcp's audience is the Service's own URI.
        "CALLER_AUTH_MODE": "jwks", "CALLER_AUDIENCE": "cmp-connector-gateway",
        "MCP_RESOURCE_URL": "http://cmp-connector.cmp.svc.cluster.local:8000/mcp",
        "CALLER_JWKS_URL": "http://cmp-control-plane.cmp.svc.cluster.local:8000/.well-known/jwks.json",
        "CALLER_ISSUER": "http://cmp-control-plane.cmp.svc.cluster.local:8000",
        "JWKS_CACHE_TTL_SECONDS": "300", "JWKS_MIN_REFETCH_SECONDS": "30",
    }
    secret = rec.one(EXTERNAL_SECRET, "cmp-connector-secrets").inputs["spec"]
    assert secret["data"] == [{"secretKey": "SERVICE_JWT_SECRET",
                               "remoteRef": {"key": "cmp/connector", "property": "service_jwt_secret"}}]
    assert gateway.registered_outputs["url"] == "http://cmp-connector.cmp.svc.cluster.local:8000"


def test_connector_network_policy_ingress_from_runtime_and_runner_egress_to_vault_cp_dns_https():
    spec = reference_render().one(NETWORK_POLICY, "cmp-connector").inputs["spec"]
    sources = [rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in spec["ingress"]]
    assert sources == ["cmp-runtime", "cmp-runner"]
    dns, vault, cp, https = spec["egress"]
    assert dns["ports"][0] == {"port": 53, "protocol": "UDP"}
    assert vault["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "vault"}
    assert vault["ports"] == [{"port": 8200, "protocol": "TCP"}]
    assert cp["to"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "cmp-control-plane"}
    assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert "10.0.0.0/8" in https["to"][0]["ipBlock"]["except"]


def test_dev_runs_the_gateway_in_debug_mode_like_the_reference_overlay():
    rec = run_platform(base_config())
    assert rec.one(CONFIG_MAP, "cmp-connector-config").inputs["data"]["LOG_LEVEL"] == "DEBUG"


def test_zero_ttl_and_no_policy_enforcement_are_kept():
    config = staging_like()
    config["connectorGateway"].update({"credentialCacheTtlSeconds": 0, "policyEnforcement": False,
                                       "externalHttps": False})
    rec = run_platform(config)
    pod = rec.one(DEPLOYMENT, "cmp-connector").inputs["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True  # Vault's Kubernetes auth logs in with it
    env = rec.one(CONFIG_MAP, "cmp-connector-config").inputs["data"]
    assert env["CREDENTIAL_CACHE_TTL_SECONDS"] == "0" and env["POLICY_ENFORCEMENT"] == "false"
    assert len(rec.one(NETWORK_POLICY, "cmp-connector").inputs["spec"]["egress"]) == 3  # no external HTTPS


def test_token_auth_is_refused_with_the_gateway_s_own_rule():
    # The gateway refuses VAULT_AUTH_METHOD=token without VAULT_TOKEN, which nothing in a deployment supplies:
    # the preview says so with the gateway's own line, naming the stack key.
    from service_src.connector_gateway.settings import GatewaySettings

    config = staging_like()
    config["connectorGateway"]["vaultAuthMethod"] = "token"
    with pytest.raises(pulumi.RunError) as caught:
        run_platform(config)
    message = str(caught.value)
    with pytest.raises(ValidationError) as service:
        GatewaySettings(control_plane_url="http://cp:8000", service_jwt_secret="s" * 32, vault_auth_method="token")
    rule = service.value.errors()[0]["msg"].removeprefix("Value error, ")
    assert message.startswith(f"config error: cmp-platform:connectorGateway.vaultAuthMethod = 'token': {rule}")
    assert "VAULT_TOKEN" in rule


def test_a_built_image_ref_overrides_the_configured_image():
    import pulumi

    from components.connector_gateway.component import ConnectorGateway, ConnectorGatewayArgs
    from components.connector_gateway.config import ConnectorGatewayConfig
    from components.vault.config import VaultConfig
    from infra.recording import run_program

    built = "registry.example.com/cmp-connector-gateway:abc123@sha256:" + "f" * 64

    def program():
        ConnectorGateway("gw", ConnectorGatewayArgs(
            namespace="cmp", settings=ConnectorGatewayConfig(), vault=VaultConfig(),
            control_plane_url="http://cp:8000", cluster_secret_store="vault-backend",
            image=pulumi.Output.from_input(built)))

    rec = run_program(program, stack="dev", config={})
    assert rec.one(DEPLOYMENT, "cmp-connector").inputs["spec"]["template"]["spec"]["containers"][0]["image"] == built


def test_a_shared_rate_limit_renders_its_storage_and_opens_the_network_policy_to_it():
    config = staging_like()
    config["connectorGateway"].update({
        "rateLimitStorageUrl": "redis://redis.redis.svc.cluster.local:6379/2", "rateLimitStorageFailure": "closed",
        "rateLimitStorageEgress": {"namespace": "redis", "podLabels": {"app.kubernetes.io/name": "redis"},
                                   "ports": [6379]},
        "mcpAllowedOrigins": ["https://console.example.com"], "callerIssuer": "https://cp.example.com",
        "mcpResourceUrl": "https://connectors.example.com/mcp"})
    rec = run_platform(config)
    env = rec.one(CONFIG_MAP, "cmp-connector-config").inputs["data"]
    assert (env["RATE_LIMIT_STORAGE_URL"], env["RATE_LIMIT_STORAGE_FAILURE"]) == (
        "redis://redis.redis.svc.cluster.local:6379/2", "closed")
    assert env["RATE_LIMIT_STORAGE_TIMEOUT_SECONDS"] == "0.5"
    assert (env["MCP_ALLOWED_ORIGINS"], env["CALLER_ISSUER"], env["MCP_RESOURCE_URL"]) == (
        "https://console.example.com", "https://cp.example.com", "https://connectors.example.com/mcp")
    egress = rec.one(NETWORK_POLICY, "cmp-connector").inputs["spec"]["egress"]
    redis = [rule for rule in egress if rule.get("ports") == [{"port": 6379, "protocol": "TCP"}]]
    assert redis and redis[0]["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "redis"}


def test_traces_render_the_otlp_endpoint_and_open_the_network_policy_to_the_collector():
    config = staging_like()
    config["connectorGateway"].update({
        "otelExporterOtlpEndpoint": "http://otel-collector.observability.svc.cluster.local:4318",
        "otlpEgress": {"namespace": "observability", "podLabels": {"app": "otel-collector"}, "ports": [4318]}})
    rec = run_platform(config)
    env = rec.one(CONFIG_MAP, "cmp-connector-config").inputs["data"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability.svc.cluster.local:4318"
    egress = rec.one(NETWORK_POLICY, "cmp-connector").inputs["spec"]["egress"]
    assert [rule for rule in egress if rule.get("ports") == [{"port": 4318, "protocol": "TCP"}]]
    untraced = run_platform(staging_like()).one(CONFIG_MAP, "cmp-connector-config").inputs["data"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in untraced


def test_hs256_callers_render_no_jwks_settings():
    config = staging_like()
    config["connectorGateway"]["callerAuthMode"] = "hs256"
    env = run_platform(config).one(CONFIG_MAP, "cmp-connector-config").inputs["data"]
    assert env["CALLER_AUTH_MODE"] == "hs256"
    assert not {"CALLER_JWKS_URL", "CALLER_ISSUER", "JWKS_CACHE_TTL_SECONDS"} & set(env)


@pytest.mark.parametrize(("settings", "key", "fragment"), [
    ({"rateLimitStorageUrl": "redis://redis:6379/0"}, "rateLimitStorageEgress", "required with rateLimitStorageUrl"),
    ({"rateLimitStorageUrl": "redis://:hunter2@redis:6379/0",
      "rateLimitStorageEgress": {"namespace": "redis", "ports": [6379]}}, "rateLimitStorageUrl", "no credentials"),
    ({"rateLimitStorageUrl": "memcached://m:11211"}, "rateLimitStorageUrl", "redis://"),
    ({"otelExporterOtlpEndpoint": "http://collector:4318"}, "otlpEgress", "required with otelExporterOtlpEndpoint"),
    ({"otelExporterOtlpEndpoint": "collector:4318", "otlpEgress": {"namespace": "o", "ports": [4318]}},
     "otelExporterOtlpEndpoint", "http:// or https://"),
    ({"mcpAllowedOrigins": ["https://a.example.com/app"]}, "mcpAllowedOrigins", "must be origins"),
    ({"callerJwksUrl": "https://cp.example.com/jwks?x=1"}, "callerJwksUrl", "without query"),
    ({"rateLimitStorageTimeoutSeconds": 30}, "rateLimitStorageTimeoutSeconds", "less than or equal to 10"),
    ({"jwksCacheTtlSeconds": 0}, "jwksCacheTtlSeconds", "greater than 0"),
    ({"callerAuthMode": "none"}, "callerAuthMode", "'jwks' or 'hs256'"),
])
def test_bad_caller_and_rate_limit_settings_are_config_errors_naming_the_key(settings, key, fragment):
    config = staging_like()
    config["connectorGateway"].update(settings)
    with pytest.raises(pulumi.RunError) as caught:
        run_platform(config)
    message = str(caught.value)
    assert message.startswith(f"config error: cmp-platform:connectorGateway.{key}"), message
    assert fragment in message, message
