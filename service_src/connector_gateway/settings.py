"""The gateway's settings, read from the environment names the ConnectorGateway ConfigMap sets.

The Vault defaults equal components/vault/paths.py (CONNECTOR_MOUNT, CONNECTOR_CREDENTIALS_PREFIX); they are
repeated here, not imported, because the image installs only `.[gateway]` and must not pull the Pulumi program
in. A test pins the two together.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAULT_CONNECTOR_MOUNT = "kv"
DEFAULT_VAULT_CONNECTOR_PREFIX = "connectors"
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class VaultAuthMethod(StrEnum):
    KUBERNETES = "kubernetes"
    TOKEN = "token"


class GatewaySettings(BaseSettings):
    """Every knob the service reads; names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    control_plane_url: str
    cp_timeout_seconds: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(65536, ge=256)

    service_jwt_secret: SecretStr

    vault_addr: str = "http://127.0.0.1:8200"
    vault_auth_method: VaultAuthMethod = VaultAuthMethod.KUBERNETES
    vault_k8s_auth_mount: str = "kubernetes"
    vault_k8s_role: str = "cmp-connector"
    vault_k8s_token_path: str = SA_TOKEN_PATH
    vault_token: SecretStr | None = None
    vault_connector_mount: str = DEFAULT_VAULT_CONNECTOR_MOUNT
    vault_connector_prefix: str = DEFAULT_VAULT_CONNECTOR_PREFIX
    vault_timeout_seconds: float = Field(2.0, gt=0)
    credential_cache_ttl_seconds: float = Field(30.0, ge=0)

    policy_enforcement: bool = True
    policy_cache_grace_seconds: float = Field(300.0, ge=0)

    connector_timeout_seconds: float = Field(10.0, gt=0)
    connector_max_retries: int = Field(2, ge=0, le=10)
    rate_limit_requests_per_minute: int = Field(600, ge=1)

    zendesk_base_url: str = "https://{subdomain}.zendesk.com"
    slack_base_url: str = "https://slack.com/api"
    hubspot_base_url: str = "https://api.hubapi.com"

    audit_log: str = "stdout"

    @field_validator("control_plane_url", "vault_addr", "slack_base_url", "hubspot_base_url", "zendesk_base_url")
    @classmethod
    def _http_url(cls, value: str, info) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{info.field_name.upper()} must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("vault_connector_mount", "vault_connector_prefix")
    @classmethod
    def _vault_segment(cls, value: str, info) -> str:
        parts = value.strip("/").split("/")
        if not value.strip("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{info.field_name.upper()} must be a clean Vault path, got {value!r}")
        return value.strip("/")

    @field_validator("service_jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("SERVICE_JWT_SECRET must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _token_when_token_auth(self) -> GatewaySettings:
        if self.vault_auth_method is VaultAuthMethod.TOKEN and not self.vault_token:
            raise ValueError("VAULT_TOKEN is required when VAULT_AUTH_METHOD=token")
        return self
