"""`cmp-platform:saleor`: Saleor's API URL, the staff user, and the provider's bounds.

The one model of this section: the program validates it with the rest of the stack config, and the dynamic
provider reads the very same section in its host process (`components.saleor.settings.settings_from`), so a
key the preview accepts is a key the provider understands.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator

from infra.config import HttpUrl, Model


class SaleorTuning(Model):
    """Bounds of the provider's calls (`saleor.tuning`); the defaults suit a real Saleor."""

    schema_version: Literal["3.20", "3.21", "3.23"] | None = Field(
        default=None, description="validate against this Saleor only (default: all supported versions)"
    )
    timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    max_attempts: int = Field(default=4, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0, le=30)
    retry_deadline_seconds: float = Field(default=60.0, gt=0, le=600)
    delete_retry_attempts: int = Field(default=6, ge=1, le=20)
    delete_retry_backoff_seconds: float = Field(default=2.0, ge=0, le=60)
    read_cache_seconds: float = Field(default=15.0, ge=0, le=300)


class SaleorConfig(Model):
    """Saleor's GraphQL endpoint and the staff user the provider logs in as (its password is a stack secret)."""

    api_url: HttpUrl = Field(description="Saleor's GraphQL endpoint, e.g. https://shop.example.com/graphql/")
    staff_email: str
    tuning: SaleorTuning = Field(default_factory=SaleorTuning)

    @field_validator("api_url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.username or parsed.password:
            raise ValueError("must not carry credentials; set saleorStaffPassword as a secret")
        return value

    @field_validator("staff_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("must be an e-mail address")
        return value

    @property
    def origin(self) -> str:
        match = re.match(r"^(https?://[^/]+)", self.api_url)
        assert match  # api_url is validated
        return match[1]
