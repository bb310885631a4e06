"""Helpers for the Vault tests: a configured seed provider and a fresh path per test on the shared OpenBao."""

from __future__ import annotations

import secrets

import pytest
from pulumi.dynamic import Config, ConfigureRequest

from components.vault.seed_provider import VaultSeedProvider


def configured_provider(addr: str, token: str, *, timeout: float = 5.0, **operator: str) -> VaultSeedProvider:
    """A provider configured the way the host does it: stack config keys, never constructor arguments."""
    raw = {"vault:address": addr, "vault:token": token, "cmp-platform:vault": {"timeoutSeconds": timeout}}
    raw.update({f"cmp-platform:{key}": value for key, value in operator.items()})
    provider = VaultSeedProvider()
    provider.configure(ConfigureRequest(Config(raw_config=raw, project_name="cmp-platform")))
    return provider


def seed_props(path: str, keys: list[dict], *, mount: str = "secret", delete_on_destroy: bool = False) -> dict:
    full = [{"rotation": "", **k} for k in keys]
    return {"mount": mount, "path": path, "keys": full, "deleteOnDestroy": delete_on_destroy}


@pytest.fixture
def unique_path() -> str:
    """A path no other test on the session's OpenBao uses."""
    return f"test/{secrets.token_hex(6)}"
