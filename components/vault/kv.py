"""KV v2 operations the seed provider needs: mount check, current state, one check-and-set write, fingerprints.

Every write is a single KV v2 write with ``cas`` = the version just read (0 when absent), so a failed or raced
seed leaves Vault exactly as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from components.vault.client import VaultSeedError, VaultSettings, vault_errors
from components.vault.paths import FINGERPRINT_KEY_PATH

READ = ("read",)
WRITE = ("create", "read", "update")


class CasConflict(VaultSeedError):
    """Someone wrote the path between our read and our write; nothing of ours was written."""


@dataclass
class SecretState:
    """What Vault holds at one path: the current version (0 = never written) and its live data."""

    version: int = 0
    data: dict[str, str] = field(default_factory=dict)


def generate_value() -> str:
    """A generated secret: 32 random bytes (256 bits), URL-safe base64."""
    return secrets.token_urlsafe(32)


def _mount_info(client: Any, settings: VaultSettings, mount: str) -> dict[str, Any]:
    """Mount type/options; ``{}`` when nothing is mounted there.

    ``sys/internal/ui/mounts`` answers any token with access under the mount, but says 403 for a missing
    mount, so a 403 is re-asked of ``sys/mounts/<mount>`` to tell "not mounted" from "not allowed".
    """
    import hvac.exceptions

    try:
        with vault_errors(settings, "read mount", f"sys/internal/ui/mounts/{mount}", READ):
            return (client.adapter.get(f"/v1/sys/internal/ui/mounts/{mount}") or {}).get("data") or {}
    except VaultSeedError as denied:
        try:
            with vault_errors(settings, "read mount", f"sys/mounts/{mount}", READ):
                info = client.adapter.get(f"/v1/sys/mounts/{mount}") or {}
        except hvac.exceptions.InvalidRequest:
            return {}
        except VaultSeedError:
            raise VaultSeedError(f"{denied} (or no secrets engine is mounted at {mount!r})") from None
        return info.get("data") or info


def ensure_kv2(client: Any, settings: VaultSettings, mount: str) -> None:
    """Fail unless ``mount`` is a KV version 2 engine (a v1 mount has no versions, so no check-and-set)."""
    data = _mount_info(client, settings, mount)
    if not data:
        raise VaultSeedError(
            f"no secrets engine is mounted at {mount!r} on {settings.address}: enable KV v2 there "
            f"(`bao secrets enable -path={mount} kv-v2`) or set cmp-platform:vault.adoptMounts false"
        )
    kind = data.get("type")
    version = str((data.get("options") or {}).get("version") or "1")
    if kind not in ("kv", "generic") or version != "2":
        described = f"KV version {version}" if kind in ("kv", "generic") else f"a {kind!r} engine"
        raise VaultSeedError(
            f"mount {mount!r} on {settings.address} is {described}; seeds need KV version 2 "
            f"(upgrade with `bao kv enable-versioning {mount}` or mount kv-v2 elsewhere)"
        )


def read_state(client: Any, settings: VaultSettings, mount: str, path: str) -> SecretState:
    """The current version and live data; a soft-deleted or destroyed latest version reads as empty data."""
    import hvac.exceptions

    meta_path = f"{mount}/metadata/{path}"
    with vault_errors(settings, "read metadata", meta_path, READ):
        try:
            meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)["data"]
        except hvac.exceptions.InvalidPath:
            return SecretState()
    current = int(meta.get("current_version") or 0)
    detail = (meta.get("versions") or {}).get(str(current)) or {}
    if current == 0 or detail.get("destroyed") or detail.get("deletion_time"):
        return SecretState(version=current)
    data_path = f"{mount}/data/{path}"
    with vault_errors(settings, "read", data_path, READ):
        try:
            body = client.secrets.kv.v2.read_secret_version(
                path=path, version=current, mount_point=mount, raise_on_deleted_version=False
            )
        except hvac.exceptions.InvalidPath:
            return SecretState(version=current)
    return SecretState(version=current, data=dict((body.get("data") or {}).get("data") or {}))


def write_cas(
    client: Any, settings: VaultSettings, mount: str, path: str, data: dict[str, str], cas: int
) -> int:
    """One KV v2 write guarded by check-and-set; returns the new version. Nothing is written on failure."""
    import hvac.exceptions

    data_path = f"{mount}/data/{path}"
    with vault_errors(settings, "write", data_path, WRITE):
        try:
            response = client.secrets.kv.v2.create_or_update_secret(
                path=path, secret=data, cas=cas, mount_point=mount
            )
        except hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" in str(exc):
                raise CasConflict(
                    f"{data_path} changed while seeding (expected version {cas}); nothing was written: "
                    "run `pulumi up` again"
                ) from None
            raise VaultSeedError(f"Vault refused the write to {data_path}: {_first_error(exc)}") from None
    return int(response["data"]["version"])


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    return str(errors[0]) if errors else type(exc).__name__


def fingerprint_key(client: Any, settings: VaultSettings, mount: str, create: bool = True) -> bytes | None:
    """The HMAC key for fingerprints, kept in Vault at ``<mount>/cmp/seed-fingerprint-key`` (made once, cas=0).

    Keying the fingerprint with a Vault-held random key makes it useful (it changes exactly when a value
    changes, so drift and rotations show in state) yet non-reversible: whoever holds only the Pulumi state
    cannot test guesses of a low-entropy operator value (a DSN, an API key) against it.
    """
    state = read_state(client, settings, mount, FINGERPRINT_KEY_PATH)
    key = state.data.get("hmac_key")
    if key:
        return key.encode()
    if not create:
        return None
    with contextlib.suppress(CasConflict):  # another run made it first: read theirs
        write_cas(client, settings, mount, FINGERPRINT_KEY_PATH, {"hmac_key": generate_value()}, state.version)
    key = read_state(client, settings, mount, FINGERPRINT_KEY_PATH).data.get("hmac_key")
    if not key:
        raise VaultSeedError(f"could not create the fingerprint key at {mount}/data/{FINGERPRINT_KEY_PATH}")
    return key.encode()


def fingerprint(key: bytes, mount: str, path: str, name: str, value: str) -> str:
    """``hmac-sha256:<32 hex>`` over path, key name and value (the same value at two paths differs)."""
    digest = hmac.new(key, f"{mount}/{path}#{name}\0{value}".encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest[:32]}"


def delete_keys(
    client: Any, settings: VaultSettings, mount: str, path: str, names: list[str]
) -> None:
    """Remove ``names``; other keys stay. With nothing else left the secret and its history are deleted."""
    state = read_state(client, settings, mount, path)
    if state.version == 0:
        return
    remaining = {k: v for k, v in state.data.items() if k not in names}
    if remaining == state.data and state.data:
        return
    if not remaining:
        meta_path = f"{mount}/metadata/{path}"
        with vault_errors(settings, "delete", meta_path, ("delete",)):
            client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=mount)
        return
    new_version = write_cas(client, settings, mount, path, remaining, state.version)
    destroy_path = f"{mount}/destroy/{path}"
    with vault_errors(settings, "destroy old versions", destroy_path, ("update",)):
        client.secrets.kv.v2.destroy_secret_versions(
            path=path, versions=list(range(1, new_version)), mount_point=mount
        )
