"""`cmp-platform:connectorGateway`: the gateway's deployment keys (image, size, network peers) beside its own
settings, which service_src/connector_gateway/settings.py defines (components/workload/config.py says how)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from components.vault.config import VaultConfig
from components.vault.paths import CONNECTOR, CONNECTOR_CONSUMER, CONNECTOR_CREDENTIALS_PREFIX
from components.workload.config import ServiceEnvironment, ServicePlatform, ServiceSettings, service_slice
from infra.config import MISSING, ConfigError, ImageRef, Peer, peer
from infra.naming import SERVICE_PORT, service_url
from service_src.connector_gateway.settings import GatewaySettings

NAME = CONNECTOR_CONSUMER  # the workload's name: cmp-connector


class ConnectorGatewayWorkload(ServiceSettings):
    """The gateway's deployment keys; ``ConnectorGatewayConfig`` adds the gateway's own settings."""

    STACK_KEY: ClassVar[str] = "connectorGateway"
    SETTINGS: ClassVar[type] = GatewaySettings
    SECRET_PATH: ClassVar = CONNECTOR

    image: ImageRef = "ghcr.io/gsvdev/cmp-connector-gateway:0.1.0"
    ingress_from: list[Peer] = Field(default_factory=lambda: [
        peer(None, "cmp-runtime"), peer(None, "cmp-runner")])
    vault_egress: Peer = Field(default_factory=lambda: peer("vault", "vault", 8200))
    rate_limit_storage_egress: Peer | None = None  # required with rateLimitStorageUrl

    @field_validator("rate_limit_storage_url", check_fields=False)
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """The ConfigMap holds no secrets (the gateway itself would take a password in the URL)."""
        if value and (urlsplit(value).username or urlsplit(value).password):
            raise ValueError("must carry no credentials: it is rendered into the ConfigMap")
        return value

    def environment(self, platform: ServicePlatform, vault: VaultConfig) -> ServiceEnvironment:
        """The gateway pods' environment: Vault from the stack's vault keys, /mcp's URI the Service's own."""
        env = self.render({
            "log_level": "DEBUG" if (platform.debug or self.debug) else "INFO",
            "port": SERVICE_PORT,
            "control_plane_url": platform.control_plane_url,
            "vault_addr": vault.address,
            "vault_k8s_auth_mount": vault.kubernetes_auth_path,
            "vault_connector_mount": vault.kv_mount,
            "vault_connector_prefix": CONNECTOR_CREDENTIALS_PREFIX,
            "mcp_resource_url": service_url(NAME, platform.namespace) + "/mcp",
        })
        if self.rate_limit_storage_url and self.rate_limit_storage_egress is None:
            raise ConfigError(f"{self.STACK_KEY}.rateLimitStorageEgress", MISSING, (
                "is required with rateLimitStorageUrl: the NetworkPolicy lets the pods reach only the peers it "
                "names (e.g. {namespace: redis, podLabels: {...}, ports: [6379]})"))
        return env


ConnectorGatewayConfig = service_slice("ConnectorGatewayConfig", ConnectorGatewayWorkload)
