"""Vault connection settings for the seed provider, and errors that name what to fix.

Settings are resolved inside the provider host (``configure()`` / env), never pickled with the provider, and
a client is built per CRUD call: an hvac client holds a requests session that must not reach Pulumi state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from components.vault.config import VaultConfig
from infra.config import error_from

DEFAULT_TIMEOUT_SECONDS = 5.0


class VaultSeedError(Exception):
    """A seed operation failed; the message names the address, path or policy to fix and holds no secret."""


@dataclass(frozen=True)
class VaultSettings:
    """Where Vault is and how long to wait for it. ``repr`` hides the token."""

    address: str
    token: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def __repr__(self) -> str:
        return f"VaultSettings(address={self.address!r}, timeout={self.timeout})"

    def client(self):
        import hvac

        return hvac.Client(url=self.address, token=self.token, timeout=self.timeout)


def _section(raw: Any) -> VaultConfig:
    """``cmp-platform:vault`` as the program reads it (structured config reaches a provider as JSON text)."""
    if raw in (None, ""):
        return VaultConfig()
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise VaultSeedError("config error: cmp-platform:vault must be a YAML object (structured config)") from None
    try:
        return VaultConfig.model_validate(data)
    except ValidationError as exc:
        raise VaultSeedError(str(error_from(exc, data)).replace("cmp-platform:", "cmp-platform:vault.", 1)) from None


def settings_from_config(get, env: dict[str, str] | None = None) -> VaultSettings:
    """Resolve settings: ``vault:address``/``vault:token``, then ``cmp-platform:vault``, then VAULT_ADDR/VAULT_TOKEN.

    ``get`` is ``ConfigureRequest.config.get``. The ``cmp-platform:vault`` section is validated by the same
    model as the program's (components/vault/config.py); its address counts only when set explicitly (the
    default is the in-cluster address External Secrets uses, which the machine running ``pulumi up`` may not
    reach). Operator-supplied values are read by the seed provider itself.
    """
    env = dict(os.environ if env is None else env)
    section = _section(get("cmp-platform:vault"))
    explicit = section.model_fields_set
    address = get("vault:address") or (section.address if "address" in explicit else None) or env.get("VAULT_ADDR")
    token = get("vault:token") or env.get("VAULT_TOKEN")
    timeout = (section.timeout_seconds if "timeout_seconds" in explicit else None) or env.get(
        "VAULT_CLIENT_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS
    return VaultSettings(address=str(address or ""), token=str(token or ""), timeout=float(timeout))


def require_usable(settings: VaultSettings | None) -> VaultSettings:
    """Fail before any request when the address or token is missing, naming where to set them."""
    if settings is None or not settings.address:
        raise VaultSeedError(
            "Vault address is not set: set `pulumi config set vault:address https://vault.example:8200` "
            "(or cmp-platform:vault.address, or VAULT_ADDR)"
        )
    if not settings.token:
        raise VaultSeedError(
            f"no Vault token for {settings.address}: set `pulumi config set --secret vault:token <token>` "
            "or VAULT_TOKEN"
        )
    return settings


@contextmanager
def vault_errors(settings: VaultSettings, action: str, api_path: str, capabilities: tuple[str, ...]) -> Iterator[None]:
    """Translate hvac/requests failures into one readable line (address + timeout, or path + policy needed)."""
    import hvac.exceptions
    import requests

    try:
        yield
    except requests.exceptions.Timeout as exc:
        raise VaultSeedError(
            f"Vault at {settings.address} did not answer within the {settings.timeout:g}s timeout "
            f"({action} {api_path}): {type(exc).__name__}"
        ) from None
    except requests.exceptions.ConnectionError as exc:
        raise VaultSeedError(
            f"Vault at {settings.address} is unreachable ({action} {api_path}, timeout {settings.timeout:g}s): "
            f"{type(exc).__name__}"
        ) from None
    except hvac.exceptions.Forbidden:
        caps = ", ".join(f'"{c}"' for c in capabilities)
        raise VaultSeedError(
            f"permission denied: {action} {api_path} at {settings.address}; the token needs a policy with "
            f'path "{api_path}" {{ capabilities = [{caps}] }} (see docs/vault.md, "seeder policy")'
        ) from None
