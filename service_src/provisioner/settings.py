"""The provisioner's settings, read from the environment.

The names are the ones the Provisioner component's ConfigMap (cmp-provisioner-config) and ExternalSecret
(cmp-provisioner-secrets) set, so the deployed pod and a local run read the same variables.
"""

from __future__ import annotations

from functools import cached_property
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports dropped; ValueError if it has none."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} has an invalid port") from exc
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def check_database_url(value: SecretStr) -> SecretStr:
    scheme = value.get_secret_value().split("://", 1)[0]
    if not (scheme.startswith("postgresql") or scheme.startswith("sqlite")):
        raise ValueError(f"DATABASE_URL must be postgresql+psycopg://... or sqlite:///..., not {scheme}://")
    return value


def config_errors(exc: ValidationError) -> list[str]:
    """One line per bad variable, ``NAME: rule`` (a rule spanning variables names them in its text)."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(message if not name or message.startswith(name) else f"{name}: {message}")
    return lines


class ProvisionerSettings(BaseSettings):
    """Every knob of the service; secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    log_level: str = "INFO"
    port: int = Field(8000, ge=1, le=65535)
    control_plane_url: str
    cp_timeout_seconds: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(262144, ge=1024)

    saleor_allowed_origins: str = ""
    saleor_legacy_hmac: bool = False
    saleor_webhook_secret: SecretStr | None = None
    jwks_cache_ttl_seconds: float = Field(300.0, gt=0)
    jwks_min_refetch_seconds: float = Field(30.0, ge=0)

    retry_max_attempts: int = Field(8, ge=1)
    retry_backoff_seconds: float = Field(1.0, gt=0)
    retry_backoff_max_seconds: float = Field(300.0, gt=0)
    worker_poll_seconds: float = Field(0.5, gt=0)
    worker_batch_size: int = Field(20, ge=1, le=1000)
    # Not in the ConfigMap: how many claimed batches one replica works at once. While a backlog lasts the
    # worker claims the next batch while the previous ones wait on the control plane (and their writes).
    worker_batches_in_flight: int = Field(4, ge=1, le=64)
    # Not in the ConfigMap: a claimed row is invisible to other replicas for this long; a replica that dies
    # mid-row releases it when the lease ends. Must exceed the time one row takes (lines x CP timeout).
    worker_lease_seconds: float = Field(120.0, gt=0)
    # Off only for benchmarks that measure acceptance alone, or a replica that should only receive.
    worker_enabled: bool = True
    # Upgrade the inbox schema at start, under an advisory lock, before the worker starts (readyz is 503 until
    # the database is at this code's revision). Off: an operator runs `cmp-provisioner migrate`.
    migrate_on_start: bool = True

    service_jwt_secret: SecretStr
    database_url: SecretStr = SecretStr("sqlite:////tmp/cmp-provisioner.db")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"LOG_LEVEL={value!r} must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("control_plane_url")
    @classmethod
    def _cp_url(cls, value: str) -> str:
        try:
            origin_of(value)
        except ValueError as exc:
            raise ValueError(f"CONTROL_PLANE_URL {exc}") from exc
        return value.rstrip("/")

    @field_validator("saleor_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            try:
                origin_of(item)
            except ValueError as exc:
                raise ValueError(f"SALEOR_ALLOWED_ORIGINS entry {exc}") from exc
            parts = urlsplit(item)
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"SALEOR_ALLOWED_ORIGINS entry {item!r} must be an origin (scheme://host[:port])")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: SecretStr) -> SecretStr:
        return check_database_url(value)

    @model_validator(mode="after")
    def _a_way_to_verify(self) -> ProvisionerSettings:
        if self.saleor_legacy_hmac and not (
            self.saleor_webhook_secret and self.saleor_webhook_secret.get_secret_value()
        ):
            raise ValueError("SALEOR_LEGACY_HMAC=true needs SALEOR_WEBHOOK_SECRET")
        if not self.saleor_legacy_hmac and not self.allowed_origins:
            raise ValueError(
                "SALEOR_ALLOWED_ORIGINS is empty: it is required (the Saleor origins whose JWS signatures are "
                "accepted, comma-separated scheme://host[:port]) unless SALEOR_LEGACY_HMAC=true"
            )
        if self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            raise ValueError("RETRY_BACKOFF_MAX_SECONDS must be >= RETRY_BACKOFF_SECONDS")
        return self

    @cached_property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(origin_of(v) for v in self.saleor_allowed_origins.split(",") if v.strip())

    @property
    def hmac_secret(self) -> bytes | None:
        """The legacy HMAC key, only when legacy verification is switched on."""
        if self.saleor_legacy_hmac and self.saleor_webhook_secret:
            return self.saleor_webhook_secret.get_secret_value().encode()
        return None
