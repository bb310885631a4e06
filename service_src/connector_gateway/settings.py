"""The gateway's settings, read from the environment names the ConnectorGateway ConfigMap sets.

The Vault defaults equal components/vault/paths.py (CONNECTOR_MOUNT, CONNECTOR_CREDENTIALS_PREFIX); they are
repeated here, not imported, because the image installs only `.[gateway]` and must not pull the Pulumi program
in. A test pins the two together.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAULT_CONNECTOR_MOUNT = "kv"
DEFAULT_VAULT_CONNECTOR_PREFIX = "connectors"
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


DEFAULT_CALLER_AUDIENCE = "cmp-connector-gateway"
JWKS_PATH = "/.well-known/jwks.json"
CALLER_ALGORITHMS = ("RS256", "ES256", "EdDSA")


class VaultAuthMethod(StrEnum):
    KUBERNETES = "kubernetes"
    TOKEN = "token"


class CallerAuthMode(StrEnum):
    """How callers' JWTs are verified: the control plane's JWKS, or (explicitly) the shared HS256 secret."""

    JWKS = "jwks"
    HS256 = "hs256"


class StorageFailure(StrEnum):
    """What the shared rate limit does while its Redis is unreachable."""

    OPEN = "open"  # admit the call, count it in a metric, log the outage
    CLOSED = "closed"  # refuse with 503 rate_limit_unavailable


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

    caller_auth_mode: CallerAuthMode = CallerAuthMode.JWKS
    caller_jwks_url: str | None = Field(None, validate_default=True)
    caller_issuer: str | None = Field(None, validate_default=True)
    caller_audience: str = Field(DEFAULT_CALLER_AUDIENCE, min_length=1, max_length=256)
    jwks_cache_ttl_seconds: float = Field(300.0, gt=0)
    jwks_min_refetch_seconds: float = Field(30.0, ge=0)
    mcp_resource_url: str | None = None
    mcp_allowed_origins: str = ""

    vault_addr: str = "http://127.0.0.1:8200"
    vault_auth_method: VaultAuthMethod = VaultAuthMethod.KUBERNETES
    vault_k8s_auth_mount: str = "kubernetes"
    vault_k8s_role: str = "cmp-connector"
    vault_k8s_token_path: str = SA_TOKEN_PATH
    vault_token: SecretStr | None = Field(None, validate_default=True)
    vault_connector_mount: str = DEFAULT_VAULT_CONNECTOR_MOUNT
    vault_connector_prefix: str = DEFAULT_VAULT_CONNECTOR_PREFIX
    vault_timeout_seconds: float = Field(2.0, gt=0)
    credential_cache_ttl_seconds: float = Field(30.0, ge=0)

    policy_enforcement: bool = True
    policy_cache_grace_seconds: float = Field(300.0, ge=0)

    connector_timeout_seconds: float = Field(10.0, gt=0)
    connector_max_retries: int = Field(2, ge=0, le=10)
    rate_limit_requests_per_minute: int = Field(600, ge=1)
    rate_limit_storage_url: str | None = None
    rate_limit_storage_failure: StorageFailure = StorageFailure.OPEN
    rate_limit_storage_timeout_seconds: float = Field(0.5, gt=0, le=10)

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

    @field_validator("caller_jwks_url", "caller_issuer", "mcp_resource_url")
    @classmethod
    def _optional_http_url(cls, value: str | None, info) -> str | None:
        name = info.field_name.upper()
        if value is None or value == "":
            # The control plane is the callers' authorization server: in jwks mode its URL is the default issuer,
            # and its JWKS the default key source.
            control_plane = info.data.get("control_plane_url")
            if control_plane is None or info.data.get("caller_auth_mode") is not CallerAuthMode.JWKS:
                return None
            return {"caller_jwks_url": control_plane + JWKS_PATH, "caller_issuer": control_plane}.get(
                info.field_name)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or parts.query:
            raise ValueError(f"{name} must be an http:// or https:// URL without query or fragment, got {value!r}")
        return value

    @field_validator("mcp_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in filter(None, (o.strip() for o in value.split(","))):
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
                raise ValueError(f"MCP_ALLOWED_ORIGINS entries must be origins like https://app.example.com, "
                                 f"got {origin!r}")
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(f"RATE_LIMIT_STORAGE_URL must be redis://host:port[/db] or rediss://..., "
                             f"got scheme {parts.scheme!r}")
        return value

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

    @field_validator("vault_token")
    @classmethod
    def _token_when_token_auth(cls, value: SecretStr | None, info) -> SecretStr | None:
        if not value and info.data.get("vault_auth_method") is VaultAuthMethod.TOKEN:
            raise ValueError("VAULT_TOKEN is required when VAULT_AUTH_METHOD=token")
        return value

    @property
    def resource_url(self) -> str:
        """The canonical URI of /mcp (RFC 8707 audience of MCP tokens, RFC 9728 ``resource``)."""
        return self.mcp_resource_url or f"http://127.0.0.1:{self.port}/mcp"

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.mcp_allowed_origins.split(",") if o.strip())

    @property
    def authorization_server(self) -> str:
        """The authorization server named in the protected resource metadata: the control plane's issuer."""
        return self.caller_issuer or self.control_plane_url


def settings_errors(exc: ValidationError) -> list[str]:
    """One line per bad variable, naming it: ``NAME: rule``."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
        lines.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return lines
