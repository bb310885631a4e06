"""Where the Saleor provider finds its API URL, staff credentials and retry bounds.

Stack config `cmp-platform:saleor` holds the plain part (`SaleorConfig`, camelCase keys) and the secret
`cmp-platform:saleorStaffPassword` the password. The provider host hands both to `configure()`; the
environment variables below are the fallback for tests and local runs. Nothing here is ever pickled into
state: `configure()` runs in the provider host, after the provider was unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from infra.naming import PROJECT

CONFIG_KEY = f"{PROJECT}:saleor"
PASSWORD_KEY = f"{PROJECT}:saleorStaffPassword"
ENV_API_URL = "SALEOR_API_URL"
ENV_STAFF_EMAIL = "SALEOR_STAFF_EMAIL"
ENV_STAFF_PASSWORD = "SALEOR_STAFF_PASSWORD"


class SettingsError(ValueError):
    """Missing or invalid Saleor provider settings; the message names the key and the rule."""


class SaleorTuning(BaseModel):
    """Bounds of the provider's calls (`saleor.tuning` in stack config); the defaults suit a real Saleor."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    schema_version: Literal["3.20", "3.21", "3.23"] | None = Field(
        default=None, alias="schemaVersion", description="validate against this Saleor only (default: all)"
    )
    timeout_seconds: float = Field(default=20.0, alias="timeoutSeconds", gt=0, le=120)
    max_attempts: int = Field(default=4, alias="maxAttempts", ge=1, le=10)
    retry_backoff_seconds: float = Field(default=0.5, alias="retryBackoffSeconds", ge=0, le=30)
    retry_deadline_seconds: float = Field(default=60.0, alias="retryDeadlineSeconds", gt=0, le=600)
    delete_retry_attempts: int = Field(default=6, alias="deleteRetryAttempts", ge=1, le=20)
    delete_retry_backoff_seconds: float = Field(default=2.0, alias="deleteRetryBackoffSeconds", ge=0, le=60)
    read_cache_seconds: float = Field(default=15.0, alias="readCacheSeconds", ge=0, le=300)


class SaleorConfig(BaseModel):
    """The non-secret `saleor` stack config section as the provider reads it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    api_url: str = Field(alias="apiUrl", description="Saleor GraphQL endpoint, e.g. https://shop/graphql/")
    staff_email: str = Field(alias="staffEmail", min_length=3)
    tuning: SaleorTuning = Field(default_factory=SaleorTuning)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"apiUrl must be an http(s) URL of Saleor's GraphQL endpoint, got {value!r}")
        if parsed.username or parsed.password:
            raise ValueError("apiUrl must not carry credentials; set saleorStaffPassword as a secret")
        return value


class SaleorSettings(BaseModel):
    """Everything one provider operation needs: config plus the staff password (never printed)."""

    model_config = ConfigDict(frozen=True)

    config: SaleorConfig
    staff_password: SecretStr

    @property
    def versions(self) -> tuple[str, ...]:
        from components.saleor.schema import SUPPORTED_VERSIONS

        version = self.config.tuning.schema_version
        return (version,) if version else SUPPORTED_VERSIONS


def _as_mapping(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{CONFIG_KEY} must be an object, got unparseable JSON ({exc.msg})") from None
        if isinstance(parsed, dict):
            return parsed
    raise SettingsError(f"{CONFIG_KEY} must be an object with apiUrl and staffEmail")


def settings_from(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> SaleorSettings:
    """Build settings from the provider's raw stack config, falling back to the environment."""
    env = os.environ if env is None else env
    section = _as_mapping(config.get(CONFIG_KEY))
    if "apiUrl" not in section and env.get(ENV_API_URL):
        section["apiUrl"] = env[ENV_API_URL]
    if "staffEmail" not in section and env.get(ENV_STAFF_EMAIL):
        section["staffEmail"] = env[ENV_STAFF_EMAIL]
    password = config.get(PASSWORD_KEY) or env.get(ENV_STAFF_PASSWORD)
    try:
        parsed = SaleorConfig.model_validate(section)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "section"
        raise SettingsError(
            f"{CONFIG_KEY}.{where}: {first['msg']} (set it with `pulumi config set --path saleor.{where} ...`"
            f" or {ENV_API_URL}/{ENV_STAFF_EMAIL})"
        ) from None
    if not password:
        raise SettingsError(
            f"{PASSWORD_KEY} is not set: `pulumi config set --secret {PASSWORD_KEY} <password>`"
            f" (or {ENV_STAFF_PASSWORD})"
        )
    return SaleorSettings(config=parsed, staff_password=SecretStr(str(password)))
