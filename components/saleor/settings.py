"""Where the Saleor provider finds its API URL, staff credentials and retry bounds.

Stack config `cmp-platform:saleor` holds the plain part (`SaleorConfig` in components.saleor.config, the same
model the program validates) and the secret `cmp-platform:saleorStaffPassword` the password. The provider host
hands both to `configure()`; the environment variables below are the fallback for tests and local runs.
Nothing here is ever pickled into state: `configure()` runs in the provider host, after the provider was
unpickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from components.saleor.config import SaleorConfig
from infra.config import ConfigError, error_from
from infra.naming import PROJECT

CONFIG_KEY = f"{PROJECT}:saleor"
PASSWORD_KEY = f"{PROJECT}:saleorStaffPassword"
ENV_API_URL = "SALEOR_API_URL"
ENV_STAFF_EMAIL = "SALEOR_STAFF_EMAIL"
ENV_STAFF_PASSWORD = "SALEOR_STAFF_PASSWORD"


class SettingsError(ValueError):
    """Missing or invalid Saleor provider settings; the message names the key and the rule."""


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
        err = error_from(exc, section)  # the line the preview prints for the same mistake
        line = ConfigError(f"saleor.{err.key.removeprefix(f'{PROJECT}:')}", err.value, err.rule)
        raise SettingsError(f"{line} (`pulumi config set --path {CONFIG_KEY}.<key> ...`, or "
                            f"{ENV_API_URL}/{ENV_STAFF_EMAIL})") from None
    if not password:
        raise SettingsError(
            f"{PASSWORD_KEY} is not set: `pulumi config set --secret {PASSWORD_KEY} <password>`"
            f" (or {ENV_STAFF_PASSWORD})"
        )
    return SaleorSettings(config=parsed, staff_password=SecretStr(str(password)))
