"""`cmp-platform:saleor`: Saleor's API URL, the staff user, and the provider's retry bounds."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from components.saleor.settings import SaleorTuning
from infra.config import HttpUrl, Model


class SaleorConfig(Model):
    """Saleor's GraphQL endpoint and the staff user the provider logs in as (its password is a stack secret)."""

    api_url: HttpUrl
    staff_email: str
    tuning: SaleorTuning = Field(default_factory=SaleorTuning)  # the Saleor provider's retry/timeout bounds

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
