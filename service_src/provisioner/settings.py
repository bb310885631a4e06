"""The provisioner's settings: the one definition of its environment.

Each field is an environment variable (its name upper-cased). A mark on the field (``json_schema_extra``) says
where a deployed pod's value comes from; the Pulumi program reads the marks to build the stack's ``provisioner``
slice and the ConfigMap (cmp-provisioner-config) and ExternalSecret (cmp-provisioner-secrets):

- ``STACK``: a key of the stack's slice (camelCase), validated by this field's type and rules, in the ConfigMap;
- ``PLATFORM``: set by the program from the rest of the stack (the control plane's URL, the port), in the
  ConfigMap;
- ``SECRET``: a key of the provisioner's Vault path, through the ExternalSecret; never in the ConfigMap;
- no mark: the image's default; a stack cannot set it.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

STACK = {"deploy": "stack"}
PLATFORM = {"deploy": "platform"}
SECRET = {"deploy": "secret"}


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
    """PostgreSQL only (the inbox's row locks and advisory locks); the message shows at most the scheme."""
    scheme = value.get_secret_value().split("://", 1)[0]
    if not scheme.startswith("postgresql") or "://" not in value.get_secret_value():
        shown = f", not {scheme}://" if re.fullmatch(r"[a-z0-9+.-]{1,20}", scheme) else ""
        raise ValueError(f"DATABASE_URL must be a postgresql+psycopg://... DSN{shown}")
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

    log_level: str = Field("INFO", json_schema_extra=PLATFORM)
    port: int = Field(8000, ge=1, le=65535, json_schema_extra=PLATFORM)
    control_plane_url: str = Field(json_schema_extra=PLATFORM)
    cp_timeout_seconds: float = Field(5.0, gt=0, json_schema_extra=STACK)
    max_body_bytes: int = Field(262144, ge=1024, json_schema_extra=STACK)

    # Deployed: the origin of the stack's saleor.apiUrl unless the stack lists them.
    saleor_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, json_schema_extra=STACK)
    # Refused whenever set: Saleor signs the webhooks with JWS (the stack gets the same line).
    saleor_legacy_hmac: object = Field(None, json_schema_extra=STACK)
    jwks_cache_ttl_seconds: float = Field(300.0, gt=0, json_schema_extra=STACK)
    jwks_min_refetch_seconds: float = Field(30.0, ge=0, json_schema_extra=STACK)

    # At most 50: with the backoff cap, a dead letter after about four hours.
    retry_max_attempts: int = Field(8, ge=1, le=50, json_schema_extra=STACK)
    retry_backoff_seconds: float = Field(1.0, gt=0, json_schema_extra=STACK)
    retry_backoff_max_seconds: float = Field(300.0, gt=0, json_schema_extra=STACK)
    worker_poll_seconds: float = Field(0.5, gt=0, json_schema_extra=STACK)
    worker_batch_size: int = Field(20, ge=1, le=1000, json_schema_extra=STACK)
    # How many claimed batches one replica works at once. While a backlog lasts the worker claims the next
    # batch while the previous ones wait on the control plane (and their writes).
    worker_batches_in_flight: int = Field(4, ge=1, le=64)
    # A claimed row is invisible to other replicas for this long; a replica that dies mid-row releases it when
    # the lease ends. Must exceed the time one row takes (lines x CP timeout).
    worker_lease_seconds: float = Field(120.0, gt=0)
    # Off only for benchmarks that measure acceptance alone, or a replica that should only receive.
    worker_enabled: bool = True
    # Upgrade the inbox schema at start, under an advisory lock, before the worker starts (readyz is 503 until
    # the database is at this code's revision). Off: an operator runs `cmp-provisioner migrate`.
    migrate_on_start: bool = Field(True, json_schema_extra=PLATFORM)

    service_jwt_secret: SecretStr = Field(json_schema_extra=SECRET)
    database_url: SecretStr = Field(json_schema_extra=SECRET)

    # Catch-up (catchup.py): Saleor's GraphQL URL, the one orders query (components/saleor/graphql/orders_since,
    # rendered by the component) and the app's own token (MANAGE_ORDERS; Vault). Without all three the service
    # still takes webhooks and says at start and in /readyz that catch-up is off.
    saleor_api_url: str | None = Field(None, json_schema_extra=PLATFORM)
    saleor_orders_query: str | None = Field(None, json_schema_extra=PLATFORM)
    saleor_app_token: SecretStr | None = Field(None, json_schema_extra=SECRET)
    # How often one replica reads Saleor's orders changed since the cursor, and how far before the cursor each
    # read starts again (orders committed late, clocks apart); overlap re-reads are inbox duplicates.
    catchup_interval_seconds: float = Field(300.0, gt=0, json_schema_extra=STACK)
    catchup_overlap_seconds: float = Field(600.0, ge=0, json_schema_extra=STACK)
    # With no cursor yet (a new database), the first read starts this far back.
    catchup_first_lookback_seconds: float = Field(86400.0, gt=0, json_schema_extra=STACK)
    catchup_page_size: int = Field(100, ge=1, le=100)  # Saleor serves at most 100 per page
    saleor_timeout_seconds: float = Field(20.0, gt=0)
    # Traces (service_src/common/tracing.py): set, the OTel SDK exports spans there over OTLP/HTTP; the SDK reads
    # this variable (and the other OTEL_* ones) itself.
    otel_exporter_otlp_endpoint: str | None = Field(None, json_schema_extra=STACK)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"LOG_LEVEL={value!r} must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("otel_exporter_otlp_endpoint")
    @classmethod
    def _otlp(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            raise ValueError(f"OTEL_EXPORTER_OTLP_ENDPOINT must start with http:// or https:// and name a host, "
                             f"got {value!r}")
        return value

    @field_validator("control_plane_url")
    @classmethod
    def _cp_url(cls, value: str) -> str:
        try:
            origin_of(value)
        except ValueError as exc:
            raise ValueError(f"CONTROL_PLANE_URL {exc}") from exc
        return value.rstrip("/")

    @field_validator("saleor_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """The environment's comma-separated text as a list (a list given as such is kept)."""
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("saleor_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("SALEOR_ALLOWED_ORIGINS is empty: it is required (the Saleor origins whose JWS "
                             "signatures are accepted, comma-separated scheme://host[:port])")
        for item in value:
            try:
                origin_of(item)
            except ValueError as exc:
                raise ValueError(f"SALEOR_ALLOWED_ORIGINS entry {exc}") from exc
            parts = urlsplit(item)
            if parts.path not in ("", "/") or parts.query or parts.fragment or "," in item:
                raise ValueError(f"SALEOR_ALLOWED_ORIGINS entry {item!r} must be an origin (scheme://host[:port])")
        return value

    @field_validator("saleor_legacy_hmac", mode="before")
    @classmethod
    def _no_legacy_hmac(cls, value: object) -> None:
        if value is None:  # unset
            return None
        raise ValueError("SALEOR_LEGACY_HMAC is not supported: Saleor signs the webhooks with JWS, verified "
                         "against Saleor's JWKS (SALEOR_ALLOWED_ORIGINS); remove the setting")

    @field_validator("retry_backoff_max_seconds")
    @classmethod
    def _backoff_order(cls, value: float, info) -> float:
        if value < info.data.get("retry_backoff_seconds", 0):
            raise ValueError("RETRY_BACKOFF_MAX_SECONDS must be >= RETRY_BACKOFF_SECONDS")
        return value

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: SecretStr) -> SecretStr:
        return check_database_url(value)

    @field_validator("saleor_api_url")
    @classmethod
    def _saleor_api_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            origin_of(value)
        except ValueError as exc:
            raise ValueError(f"SALEOR_API_URL {exc} (Saleor's GraphQL endpoint, ending /graphql/)") from exc
        return value.strip()

    @cached_property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(origin_of(v) for v in self.saleor_allowed_origins)
