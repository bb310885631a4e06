"""Tenant connector credentials from Vault KV v2, cached briefly.

Paths are ``<VAULT_CONNECTOR_MOUNT>/data/<VAULT_CONNECTOR_PREFIX>/{org}/{project}/{binding}``, and for a per-user
binding's users ``.../{binding}/users/{sub}``. Each segment is checked against the strict pattern again here, so
no caller of this module can read outside a tenant prefix, nor one user reach another's path.
hvac is synchronous: reads run in a worker thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from pathlib import Path

import hvac
import hvac.exceptions
import requests

from service_src.common.tracing import Tracing
from service_src.connector_gateway.auth import check_segment
from service_src.connector_gateway.errors import GatewayError, unavailable
from service_src.connector_gateway.settings import GatewaySettings, VaultAuthMethod
from service_src.connector_gateway.tracing import traced_adapter

log = logging.getLogger("cmp.connector_gateway.vault")
USERS_SEGMENT = "users"
# A token subject used as a path segment: no "/", no leading dot (so never "." or ".."), nothing Vault's policy
# globs read ("*", "+").
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def check_subject(sub: object) -> str:
    if not isinstance(sub, str) or not SUBJECT.fullmatch(sub):
        raise GatewayError(403, "invalid_subject", "the caller's token subject (sub) cannot name a per-user "
                           f"connection: it must match {SUBJECT.pattern}")
    return sub


def warn_about_local_setup(settings: GatewaySettings) -> None:
    """One log line when Kubernetes auth cannot work here: outside a pod there is no service-account token."""
    if settings.vault_auth_method is not VaultAuthMethod.KUBERNETES:
        return
    path = Path(settings.vault_k8s_token_path)
    if not path.is_file():
        hint = " (VAULT_TOKEN is set but ignored)" if settings.vault_token else ""
        log.error("VAULT_AUTH_METHOD=kubernetes but the service-account token file %s does not exist%s: Vault "
                  "reads will answer 503 vault_unavailable; outside a pod set VAULT_AUTH_METHOD=token and "
                  "VAULT_TOKEN", path, hint)


class CredentialStore:
    def __init__(self, settings: GatewaySettings, *, clock=time.monotonic, tracing: Tracing | None = None) -> None:
        self._settings = settings
        self._mount = settings.vault_connector_mount
        self._prefix = settings.vault_connector_prefix
        self._ttl = settings.credential_cache_ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, str]]] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._login_lock = threading.Lock()
        extra = {"adapter": traced_adapter(tracing.tracer)} if tracing is not None and tracing.enabled else {}
        self._client = hvac.Client(url=settings.vault_addr, timeout=settings.vault_timeout_seconds, **extra)
        if settings.vault_auth_method is VaultAuthMethod.TOKEN and settings.vault_token is not None:
            self._client.token = settings.vault_token.get_secret_value()
        self._logged_in = settings.vault_auth_method is VaultAuthMethod.TOKEN

    def secret_path(self, org: str, project: str, binding: str) -> str:
        """The path under the mount, after the strict check of every segment."""
        segments = [check_segment(k, v) for k, v in (("org", org), ("project", project), ("binding", binding))]
        return "/".join([self._prefix, *segments])

    async def get(self, org: str, project: str, binding: str) -> dict[str, str]:
        path = self.secret_path(org, project, binding)
        key = (org, project, binding)
        hit = self._cache.get(key)
        if hit is not None and self._clock() < hit[0]:
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit is not None and self._clock() < hit[0]:
                return hit[1]
            data = await asyncio.to_thread(self._read, path, binding)
            if self._ttl > 0:
                self._cache[key] = (self._clock() + self._ttl, data)
            return data

    def _login(self, force: bool = False) -> None:
        with self._login_lock:
            if self._logged_in and not force:
                return
            path = Path(self._settings.vault_k8s_token_path)
            try:
                jwt = path.read_text().strip()
            except FileNotFoundError:
                raise unavailable("vault_unavailable", f"no service-account token file {path} for Vault's "
                                  "kubernetes login (outside a pod: VAULT_AUTH_METHOD=token)") from None
            self._client.auth.kubernetes.login(
                role=self._settings.vault_k8s_role, jwt=jwt, mount_point=self._settings.vault_k8s_auth_mount
            )
            self._logged_in = True

    def _read(self, path: str, binding: str) -> dict[str, str]:
        return self._call(lambda: self._read_version(path, binding))[0]

    def _call(self, operation):
        """``operation`` against Vault, logged in; a Kubernetes-auth token that expired logs in again once."""
        try:
            return self._once(operation)
        except hvac.exceptions.Forbidden:
            if self._settings.vault_auth_method is not VaultAuthMethod.KUBERNETES:
                raise unavailable("vault_forbidden", "Vault refused the gateway's token for this path") from None
        try:
            self._login(force=True)
            return self._once(operation)
        except hvac.exceptions.Forbidden:
            raise unavailable("vault_forbidden", "Vault refused the gateway's role for this path") from None
        except (OSError, hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise unavailable("vault_unavailable", f"Vault login failed ({type(exc).__name__})") from None

    def _once(self, operation):
        try:
            if not self._logged_in:
                self._login()
            return operation()
        except hvac.exceptions.Forbidden:
            raise
        except (OSError, requests.RequestException, hvac.exceptions.VaultError) as exc:
            raise unavailable("vault_unavailable", f"Vault is unavailable ({type(exc).__name__})") from None

    def _read_version(self, path: str, binding: str) -> tuple[dict[str, str], int]:
        try:
            response = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise GatewayError(
                424, "credentials_missing", f"no credentials are stored for binding {binding!r}"
            ) from None
        data = (response or {}).get("data", {}).get("data")
        if not isinstance(data, dict):
            raise GatewayError(424, "credentials_missing", f"credentials for binding {binding!r} are empty")
        version = (response.get("data", {}).get("metadata") or {}).get("version", 0)
        return {str(k): str(v) for k, v in data.items()}, int(version)

    # ---- per-user connections (user_connections.py): read with the KV version, write back with check-and-set --
    def user_path(self, org: str, project: str, binding: str, sub: str) -> str:
        """``<prefix>/{org}/{project}/{binding}/users/{sub}``; ``sub`` is the verified token's subject."""
        return "/".join([self.secret_path(org, project, binding), USERS_SEGMENT, check_subject(sub)])

    async def read_versioned(self, path: str, binding: str) -> tuple[dict[str, str], int]:
        """The data at ``path`` and its KV v2 version, uncached (424 credentials_missing when nothing is there)."""
        return await asyncio.to_thread(self._call, lambda: self._read_version(path, binding))

    async def write_cas(self, path: str, data: dict[str, str], version: int) -> bool:
        """Write ``data`` only while ``path`` is still at ``version`` (KV v2 ``cas``); False when another writer
        came first."""

        def write() -> bool:
            try:
                self._client.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=version,
                                                                    mount_point=self._mount)
            except hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" in str(exc):
                    return False
                raise
            return True

        return await asyncio.to_thread(self._call, write)

    def ready(self) -> tuple[bool, str]:
        """Vault answers and our token is valid (a login happens here in cluster if needed)."""
        try:
            if not self._logged_in:
                self._login()
            try:
                self._client.auth.token.lookup_self()
            except hvac.exceptions.Forbidden:
                if self._settings.vault_auth_method is not VaultAuthMethod.KUBERNETES:
                    raise
                self._login(force=True)  # the login token expired: log in again, as a read would
                self._client.auth.token.lookup_self()
            return True, "ok"
        except GatewayError as exc:
            return False, exc.message
        except hvac.exceptions.Forbidden:
            return False, "token refused"
        except (OSError, requests.RequestException, hvac.exceptions.VaultError) as exc:
            return False, type(exc).__name__

    def close(self) -> None:
        self._client.adapter.close()
