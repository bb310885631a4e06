"""`cmp-platform:connectorGateway`: the gateway's slice of stack config, rendered into its ConfigMap."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from components.vault.paths import CONNECTOR, CONNECTOR_CONSUMER
from components.workload.config import ServiceSettings
from infra.config import HttpUrl, ImageRef, Peer, http_url, peer
from infra.naming import config_map_name, secret_name

NAME = CONNECTOR_CONSUMER  # the workload's name: cmp-connector


class ConnectorGatewayConfig(ServiceSettings):
    """The gateway's settings; each becomes an environment variable of its ConfigMap (docs/connector-gateway.md)."""

    image: ImageRef = "ghcr.io/gsvdev/cmp-connector-gateway:0.1.0"
    ingress_from: list[Peer] = Field(default_factory=lambda: [
        peer(None, "cmp-runtime"), peer(None, "cmp-runner")])
    vault_egress: Peer = Field(default_factory=lambda: peer("vault", "vault", 8200))
    vault_auth_method: Literal["kubernetes", "token"] = "kubernetes"
    vault_k8s_role: str = "cmp-connector"
    vault_timeout_seconds: float = Field(default=2, gt=0)
    credential_cache_ttl_seconds: int = Field(default=30, ge=0)
    policy_enforcement: bool = True
    policy_cache_grace_seconds: int = Field(default=300, ge=0)
    connector_timeout_seconds: float = Field(default=10, gt=0)
    connector_max_retries: int = Field(default=2, ge=0, le=10)
    rate_limit_requests_per_minute: int = Field(default=600, gt=0)
    max_body_bytes: int = Field(default=65536, ge=256)  # the service refuses less (MAX_BODY_BYTES)
    zendesk_base_url: str = "https://{subdomain}.zendesk.com"
    slack_base_url: HttpUrl = "https://slack.com/api"
    hubspot_base_url: HttpUrl = "https://api.hubapi.com"
    audit_log: str = "stdout"

    @field_validator("vault_auth_method")
    @classmethod
    def _token_source(cls, value: str) -> str:
        """Token auth needs VAULT_TOKEN in the pod; only the ExternalSecret (the Vault path table) could supply it."""
        supplied = sorted(key.env_name for key in CONNECTOR.keys)
        if value == "token" and "VAULT_TOKEN" not in supplied:
            raise ValueError(
                f"token needs VAULT_TOKEN in the pod, which nothing supplies: the {config_map_name(NAME)} ConfigMap "
                f"holds no secrets and the {secret_name(NAME)} ExternalSecret carries only {', '.join(supplied)} "
                f"(Vault {CONNECTOR.mount}/{CONNECTOR.path}); use kubernetes (the pod's service-account token)")
        return value

    @field_validator("zendesk_base_url")
    @classmethod
    def _zendesk(cls, value: str) -> str:
        http_url(value.replace("{subdomain}", "x"))
        if "{subdomain}" not in value:
            raise ValueError("must contain the placeholder {subdomain}")
        return value
