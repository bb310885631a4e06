"""Fixtures for the Saleor provider tests: a fresh fake Saleor per test and providers configured for it.

The fake validates every document against Saleor's own schema, read through CMP_SCHEMA_DIR (the Makefile and
.ci/run set it); when it is unset, the tests that need the fake are skipped, saying so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.saleor.auth import TOKENS
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from components.saleor.read_cache import SNAPSHOTS
from components.saleor.settings import CONFIG_KEY, PASSWORD_KEY
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.support.tiers import server_fixture

# Fast bounds for tests: real retries and backoff, in milliseconds instead of seconds.
FAST_TUNING = {
    "maxAttempts": 3,
    "retryBackoffSeconds": 0.01,
    "retryDeadlineSeconds": 5,
    "deleteRetryAttempts": 3,
    "deleteRetryBackoffSeconds": 0.01,
    "timeoutSeconds": 5,
    "schemaVersion": "3.23",
}


def stack_config(fake: FakeSaleor, *, password: str | None = None, **tuning: Any) -> dict[str, Any]:
    """The provider's raw stack config as the engine hands it over (objects as JSON strings)."""
    section = {"apiUrl": fake.api_url, "staffEmail": fake.staff.email, "tuning": {**FAST_TUNING, **tuning}}
    return {CONFIG_KEY: json.dumps(section), PASSWORD_KEY: password or fake.staff.password}


class _Config:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def get(self, key: str) -> Any:
        return self.raw.get(key)


class ConfigRequest:
    """What the provider host passes to configure(): `.config.get(key)` over the raw stack config."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.config = _Config(raw)


def configured(provider_cls, fake: FakeSaleor, *, password: str | None = None, **tuning: Any):
    provider = provider_cls()
    provider.configure(ConfigRequest(stack_config(fake, password=password, **tuning)))
    return provider


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """Each test starts as a new provider host would: no read snapshot, no staff token."""
    SNAPSHOTS.clear()
    TOKENS.clear()
    yield
    SNAPSHOTS.clear()
    TOKENS.clear()


@server_fixture
def fake_saleor(schema_dir):
    with FakeSaleor() as fake:
        yield fake


@pytest.fixture
def app_provider(fake_saleor):
    return configured(SaleorAppProvider, fake_saleor)


@pytest.fixture
def webhook_provider(fake_saleor):
    return configured(SaleorWebhookProvider, fake_saleor)
