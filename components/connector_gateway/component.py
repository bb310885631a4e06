"""ConnectorGateway: the connector/MCP gateway agents call for external tools."""

from __future__ import annotations

import pulumi

from components.connector_gateway.config import NAME, ConnectorGatewayConfig
from components.vault.config import VaultConfig
from components.vault.paths import CONNECTOR
from components.workload.component import ServiceArgs, ServiceWorkload, service_workload_args
from components.workload.config import ServiceEnvironment, ServicePlatform
from infra.naming import type_token


class ConnectorGatewayArgs(ServiceArgs):
    settings: ConnectorGatewayConfig
    vault: VaultConfig


def connector_environment(args: ConnectorGatewayArgs) -> ServiceEnvironment:
    """The ConfigMap and the ExternalSecret's keys, from the gateway's own settings model."""
    return args.settings.environment(ServicePlatform(args.namespace, args.control_plane_url, args.debug), args.vault)


class ConnectorGateway(pulumi.ComponentResource):
    """Gateway pods that read tenant credentials from Vault (Kubernetes auth: the SA token is mounted)."""

    def __init__(self, name: str, args: ConnectorGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(type_token("ConnectorGateway"), name, None, opts)
        s = args.settings
        env = connector_environment(args)
        self.workload = ServiceWorkload(NAME, service_workload_args(
            NAME, args, env=env.config_map, secret_path=CONNECTOR, secret_keys=env.secret_keys,
            egress_peers=(s.vault_egress, s.control_plane_egress,
                          *([s.rate_limit_storage_egress] if s.rate_limit_storage_egress else []),
                          *([s.otlp_egress] if s.otlp_egress else [])),
            # Vault's Kubernetes auth logs in with the pod's service-account token.
            automount_service_account_token=s.vault_auth_method == "kubernetes",
        ), opts=pulumi.ResourceOptions(parent=self))
        self.url = self.workload.url
        self.register_outputs({"url": self.url})
