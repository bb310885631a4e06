"""ConnectorGateway: the connector/MCP gateway agents call for external tools."""

from __future__ import annotations

import pulumi

from components.connector_gateway.config import ConnectorGatewayConfig
from components.vault.config import VaultConfig
from components.vault.paths import CONNECTOR, CONNECTOR_CREDENTIALS_PREFIX
from components.workload.component import (
    ServiceArgs,
    ServiceWorkload,
    env_flag,
    env_number,
    service_env,
    service_workload_args,
)
from infra.naming import service_url, type_token

NAME = "cmp-connector"


class ConnectorGatewayArgs(ServiceArgs):
    settings: ConnectorGatewayConfig
    vault: VaultConfig


def connector_env(args: ConnectorGatewayArgs) -> dict[str, str]:
    """The gateway's plain environment (the ConfigMap); SERVICE_JWT_SECRET comes from the ExternalSecret."""
    s = args.settings
    return {
        **service_env(args),
        "VAULT_ADDR": args.vault.address,
        "VAULT_AUTH_METHOD": s.vault_auth_method,
        "VAULT_K8S_AUTH_MOUNT": args.vault.kubernetes_auth_path,
        "VAULT_K8S_ROLE": s.vault_k8s_role,
        "VAULT_CONNECTOR_MOUNT": args.vault.kv_mount,
        "VAULT_CONNECTOR_PREFIX": CONNECTOR_CREDENTIALS_PREFIX,
        "VAULT_TIMEOUT_SECONDS": env_number(s.vault_timeout_seconds),
        "CREDENTIAL_CACHE_TTL_SECONDS": str(s.credential_cache_ttl_seconds),
        "POLICY_ENFORCEMENT": env_flag(s.policy_enforcement),
        "POLICY_CACHE_GRACE_SECONDS": str(s.policy_cache_grace_seconds),
        "CONNECTOR_TIMEOUT_SECONDS": env_number(s.connector_timeout_seconds),
        "CONNECTOR_MAX_RETRIES": str(s.connector_max_retries),
        "RATE_LIMIT_REQUESTS_PER_MINUTE": str(s.rate_limit_requests_per_minute),
        "ZENDESK_BASE_URL": s.zendesk_base_url,
        "SLACK_BASE_URL": s.slack_base_url,
        "HUBSPOT_BASE_URL": s.hubspot_base_url,
        "AUDIT_LOG": s.audit_log,
        **caller_env(args),
        **rate_limit_env(s),
    }


def caller_env(args: ConnectorGatewayArgs) -> dict[str, str]:
    """How callers are verified: the control plane's JWKS (its URL unless set), and /mcp's canonical URI."""
    s = args.settings
    env = {"CALLER_AUTH_MODE": s.caller_auth_mode, "CALLER_AUDIENCE": s.caller_audience,
           "MCP_RESOURCE_URL": s.mcp_resource_url or service_url(NAME, args.namespace) + "/mcp"}
    if s.mcp_allowed_origins:
        env["MCP_ALLOWED_ORIGINS"] = ",".join(s.mcp_allowed_origins)
    if s.caller_auth_mode == "jwks":
        env |= {"CALLER_JWKS_URL": s.caller_jwks_url or args.control_plane_url.rstrip("/") + "/.well-known/jwks.json",
                "CALLER_ISSUER": s.caller_issuer or args.control_plane_url.rstrip("/"),
                "JWKS_CACHE_TTL_SECONDS": env_number(s.jwks_cache_ttl_seconds),
                "JWKS_MIN_REFETCH_SECONDS": env_number(s.jwks_min_refetch_seconds)}
    elif s.caller_issuer:
        env["CALLER_ISSUER"] = s.caller_issuer
    return env


def rate_limit_env(s: ConnectorGatewayConfig) -> dict[str, str]:
    if not s.rate_limit_storage_url:
        return {}
    return {"RATE_LIMIT_STORAGE_URL": s.rate_limit_storage_url,
            "RATE_LIMIT_STORAGE_FAILURE": s.rate_limit_storage_failure,
            "RATE_LIMIT_STORAGE_TIMEOUT_SECONDS": env_number(s.rate_limit_storage_timeout_seconds)}


class ConnectorGateway(pulumi.ComponentResource):
    """Gateway pods that read tenant credentials from Vault (Kubernetes auth: the SA token is mounted)."""

    def __init__(self, name: str, args: ConnectorGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("ConnectorGateway"), name, None, opts)
        s = args.settings
        self.workload = ServiceWorkload(NAME, service_workload_args(
            NAME, args, env=connector_env(args), secret_path=CONNECTOR,
            egress_peers=(s.vault_egress, s.control_plane_egress,
                          *([s.rate_limit_storage_egress] if s.rate_limit_storage_egress else [])),
            # Vault's Kubernetes auth logs in with the pod's service-account token.
            automount_service_account_token=s.vault_auth_method == "kubernetes",
        ), opts=pulumi.ResourceOptions(parent=self))
        self.url = self.workload.url
        self.register_outputs({"url": self.url})
