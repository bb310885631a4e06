"""ConnectorGateway rendered by the real program: the objects a GitOps base held for it, and its environment."""

from __future__ import annotations

import pulumi
import pytest

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
        "MAX_BODY_BYTES": "65536", "VAULT_ADDR": "http://vault.vault.svc.cluster.local:8200",
        "VAULT_AUTH_METHOD": "kubernetes", "VAULT_K8S_AUTH_MOUNT": "kubernetes", "VAULT_K8S_ROLE": "cmp-connector",
        "VAULT_CONNECTOR_MOUNT": "kv", "VAULT_CONNECTOR_PREFIX": "connectors", "VAULT_TIMEOUT_SECONDS": "2",
        "CREDENTIAL_CACHE_TTL_SECONDS": "30", "POLICY_ENFORCEMENT": "true", "POLICY_CACHE_GRACE_SECONDS": "300",
        "CONNECTOR_TIMEOUT_SECONDS": "10", "CONNECTOR_MAX_RETRIES": "2", "RATE_LIMIT_REQUESTS_PER_MINUTE": "600",
        "ZENDESK_BASE_URL": "https://{subdomain}.zendesk.com", "SLACK_BASE_URL": "https://slack.com/api",
        "HUBSPOT_BASE_URL": "https://api.hubapi.com", "AUDIT_LOG": "stdout",
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


def test_token_auth_without_a_token_source_is_a_config_error_naming_both_keys():
    # the gateway refuses VAULT_AUTH_METHOD=token without VAULT_TOKEN, and neither the ConfigMap nor the
    # ExternalSecret (the Vault path table) supplies one
    config = staging_like()
    config["connectorGateway"]["vaultAuthMethod"] = "token"
    with pytest.raises(pulumi.RunError) as caught:
        run_platform(config)
    message = str(caught.value)
    assert message.startswith("config error: cmp-platform:connectorGateway.vaultAuthMethod = 'token': ")
    assert "VAULT_TOKEN" in message
    assert "cmp-connector-secrets ExternalSecret carries only SERVICE_JWT_SECRET" in message


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
