"""`cmp-platform:connectorGateway`: the gateway's slice of stack config, rendered into its ConfigMap."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

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
    # Callers (docs/connector-gateway.md, "Callers"): unset URLs follow the control plane's.
    caller_auth_mode: Literal["jwks", "hs256"] = "jwks"
    caller_jwks_url: HttpUrl | None = None  # default: <controlPlaneUrl>/.well-known/jwks.json
    caller_issuer: HttpUrl | None = None  # default: the control plane's URL (in jwks mode)
    caller_audience: str = Field(default="cmp-connector-gateway", min_length=1, max_length=256)
    jwks_cache_ttl_seconds: float = Field(default=300, gt=0)
    jwks_min_refetch_seconds: float = Field(default=30, ge=0)
    mcp_resource_url: HttpUrl | None = None  # default: the Service's in-cluster URL + /mcp
    mcp_allowed_origins: list[str] = Field(default_factory=list)
    # The shared per-org limit: unset, each pod limits on its own.
    rate_limit_storage_url: str | None = None
    rate_limit_storage_egress: Peer | None = Field(default=None, validate_default=True)
    rate_limit_storage_failure: Literal["open", "closed"] = "open"
    rate_limit_storage_timeout_seconds: float = Field(default=0.5, gt=0, le=10)

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

    @field_validator("caller_jwks_url", "caller_issuer", "mcp_resource_url")
    @classmethod
    def _no_query(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).query or urlsplit(value).fragment):
            raise ValueError("must be a URL without query or fragment (the service refuses one)")
        return value

    @field_validator("mcp_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or "," in origin:
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com (no path)")
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("must be redis://host:port/db or rediss://host:port/db")
        if parts.username or parts.password:
            raise ValueError("must carry no credentials: it is rendered into the ConfigMap")
        return value

    @field_validator("rate_limit_storage_egress")
    @classmethod
    def _redis_reachable(cls, value: Peer | None, info) -> Peer | None:
        if value is None and info.data.get("rate_limit_storage_url"):
            raise ValueError("is required with rateLimitStorageUrl: the NetworkPolicy lets the pods reach only "
                             "the peers it names (e.g. {namespace: redis, podLabels: {...}, ports: [6379]})")
        return value

    @field_validator("zendesk_base_url")
    @classmethod
    def _zendesk(cls, value: str) -> str:
        http_url(value.replace("{subdomain}", "x"))
        if "{subdomain}" not in value:
            raise ValueError("must contain the placeholder {subdomain}")
        return value
