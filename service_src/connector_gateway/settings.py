"""The gateway's settings: the one definition of its environment.

Each field is an environment variable (its name upper-cased). A mark on the field (``json_schema_extra``) says
where a deployed pod's value comes from; the Pulumi program reads the marks to build the stack's
``connectorGateway`` slice and the ConfigMap and ExternalSecret (components/connector_gateway):

- ``STACK``: a key of the stack's slice (camelCase), validated by this field's type and rules, in the ConfigMap;
- ``PLATFORM``: set by the program from the rest of the stack (the control plane's URL, Vault's address), in the
  ConfigMap;
- ``SECRET``: a key of the gateway's Vault path, through the ExternalSecret; never in the ConfigMap;
- no mark: the image's default; a stack cannot set it.

A ``STACK`` field marked ``"with": <field>`` is left out of the ConfigMap while that field has no value.
The Vault defaults equal components/vault/paths.py (CONNECTOR_MOUNT, CONNECTOR_CREDENTIALS_PREFIX); they are
repeated here, not imported, because the image installs only `.[gateway]` and must not pull the Pulumi program
in. A test pins the two together.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_VAULT_CONNECTOR_MOUNT = "kv"
DEFAULT_VAULT_CONNECTOR_PREFIX = "connectors"
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

DEFAULT_CALLER_AUDIENCE = "cmp-connector-gateway"
JWKS_PATH = "/.well-known/jwks.json"
CALLER_ALGORITHMS = ("RS256", "ES256", "EdDSA")

STACK = {"deploy": "stack"}
PLATFORM = {"deploy": "platform"}
SECRET = {"deploy": "secret"}


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


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must start with http:// or https:// and name a host, got {value!r}")
    return value.rstrip("/")


def _comma_list(value: object) -> object:
    """A list from the environment's comma-separated text (a list given as such is kept)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class GatewaySettings(BaseSettings):
    """Every knob the service reads; names are the environment variables (case-insensitive)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    # Declared in the order the ConfigMap lists them: basics, Vault, connectors and limits, callers, shared limit.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", json_schema_extra=PLATFORM)
    port: int = Field(8000, ge=1, le=65535, json_schema_extra=PLATFORM)
    workers: int = Field(1, ge=1, le=64)
    control_plane_url: str = Field(json_schema_extra=PLATFORM)
    cp_timeout_seconds: float = Field(5.0, gt=0, json_schema_extra=STACK)
    max_body_bytes: int = Field(65536, ge=256, json_schema_extra=STACK)
    # Largest tool result passed on (compact JSON bytes); result_limits.py says how the default is sized.
    max_result_bytes: int = Field(75000, ge=1024, le=16 * 1024 * 1024, json_schema_extra=STACK)

    service_jwt_secret: SecretStr = Field(json_schema_extra=SECRET)

    vault_addr: str = Field("http://127.0.0.1:8200", json_schema_extra=PLATFORM)
    # Before vault_auth_method, whose rule reads it. Nothing in a deployment supplies it.
    vault_token: SecretStr | None = None
    vault_auth_method: VaultAuthMethod = Field(VaultAuthMethod.KUBERNETES, json_schema_extra=STACK)
    vault_k8s_auth_mount: str = Field("kubernetes", json_schema_extra=PLATFORM)
    vault_k8s_role: str = Field("cmp-connector", json_schema_extra=STACK)
    vault_k8s_token_path: str = SA_TOKEN_PATH
    vault_connector_mount: str = Field(DEFAULT_VAULT_CONNECTOR_MOUNT, json_schema_extra=PLATFORM)
    vault_connector_prefix: str = Field(DEFAULT_VAULT_CONNECTOR_PREFIX, json_schema_extra=PLATFORM)
    vault_timeout_seconds: float = Field(2.0, gt=0, json_schema_extra=STACK)
    credential_cache_ttl_seconds: float = Field(30.0, ge=0, json_schema_extra=STACK)

    policy_enforcement: bool = Field(True, json_schema_extra=STACK)
    policy_cache_grace_seconds: float = Field(300.0, ge=0, json_schema_extra=STACK)

    connector_timeout_seconds: float = Field(10.0, gt=0, json_schema_extra=STACK)
    connector_max_retries: int = Field(2, ge=0, le=10, json_schema_extra=STACK)
    rate_limit_requests_per_minute: int = Field(600, ge=1, json_schema_extra=STACK)

    zendesk_base_url: str = Field("https://{subdomain}.zendesk.com", json_schema_extra=STACK)
    slack_base_url: str = Field("https://slack.com/api", json_schema_extra=STACK)
    hubspot_base_url: str = Field("https://api.hubapi.com", json_schema_extra=STACK)
    audit_log: str = Field("stdout", json_schema_extra=STACK)

    caller_auth_mode: CallerAuthMode = Field(CallerAuthMode.JWKS, json_schema_extra=STACK)
    caller_audience: str = Field(DEFAULT_CALLER_AUDIENCE, min_length=1, max_length=256, json_schema_extra=STACK)
    mcp_resource_url: str | None = Field(None, json_schema_extra=STACK)  # deployed: the Service's URL + /mcp
    mcp_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list, json_schema_extra=STACK)
    # Unset in jwks mode: the control plane's JWKS and URL (it is the callers' authorization server).
    caller_jwks_url: str | None = Field(None, validate_default=True, json_schema_extra=STACK)
    caller_issuer: str | None = Field(None, validate_default=True, json_schema_extra=STACK)
    jwks_cache_ttl_seconds: float = Field(300.0, gt=0, json_schema_extra={**STACK, "with": "caller_jwks_url"})
    jwks_min_refetch_seconds: float = Field(30.0, ge=0, json_schema_extra={**STACK, "with": "caller_jwks_url"})

    # Unset: each pod limits on its own; set: the per-org limit is shared through this Redis.
    rate_limit_storage_url: str | None = Field(None, json_schema_extra=STACK)
    rate_limit_storage_failure: StorageFailure = Field(
        StorageFailure.OPEN, json_schema_extra={**STACK, "with": "rate_limit_storage_url"})
    rate_limit_storage_timeout_seconds: float = Field(
        0.5, gt=0, le=10, json_schema_extra={**STACK, "with": "rate_limit_storage_url"})

    # Traces (service_src/common/tracing.py): set, the OTel SDK exports spans there over OTLP/HTTP; the SDK reads
    # this variable (and the other OTEL_* ones) itself.
    otel_exporter_otlp_endpoint: str | None = Field(None, json_schema_extra=STACK)

    @field_validator("control_plane_url", "vault_addr", "slack_base_url", "hubspot_base_url")
    @classmethod
    def _url(cls, value: str, info) -> str:
        return _http_url(value, info.field_name.upper())

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _otlp(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "OTEL_EXPORTER_OTLP_ENDPOINT")

    @field_validator("zendesk_base_url")
    @classmethod
    def _zendesk(cls, value: str) -> str:
        # Each account is its own host; only a loopback server (a local fake) may answer for every account.
        if "{subdomain}" not in value and urlsplit(value).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"ZENDESK_BASE_URL must contain the placeholder {{subdomain}} (or be a loopback URL, "
                             f"one local server for every account), got {value!r}")
        _http_url(value.replace("{subdomain}", "x"), "ZENDESK_BASE_URL")
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

    @field_validator("mcp_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("mcp_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
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

    @field_validator("vault_auth_method")
    @classmethod
    def _token_for_token_auth(cls, value: VaultAuthMethod, info) -> VaultAuthMethod:
        if value is VaultAuthMethod.TOKEN and not info.data.get("vault_token"):
            raise ValueError("VAULT_AUTH_METHOD=token needs VAULT_TOKEN, which a deployed pod never gets (its only "
                             "secrets come from its ExternalSecret); use kubernetes (the pod's service-account token)")
        return value

    @property
    def resource_url(self) -> str:
        """The canonical URI of /mcp (RFC 8707 audience of MCP tokens, RFC 9728 ``resource``)."""
        return self.mcp_resource_url or f"http://127.0.0.1:{self.port}/mcp"

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(origin.rstrip("/") for origin in self.mcp_allowed_origins)

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
