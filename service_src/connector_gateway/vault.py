"""Tenant connector credentials from Vault KV v2, cached briefly.

Paths are ``<VAULT_CONNECTOR_MOUNT>/data/<VAULT_CONNECTOR_PREFIX>/{org}/{project}/{binding}``. Each segment is
checked against the strict pattern again here, so no caller of this module can read outside a tenant prefix.
hvac is synchronous: reads run in a worker thread so they never block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import hvac
import hvac.exceptions
import requests

from service_src.connector_gateway.auth import check_segment
from service_src.connector_gateway.errors import GatewayError, unavailable
from service_src.connector_gateway.settings import GatewaySettings, VaultAuthMethod

log = logging.getLogger("cmp.connector_gateway.vault")


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
    def __init__(self, settings: GatewaySettings, *, clock=time.monotonic) -> None:
        self._settings = settings
        self._mount = settings.vault_connector_mount
        self._prefix = settings.vault_connector_prefix
        self._ttl = settings.credential_cache_ttl_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, str]]] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._login_lock = threading.Lock()
        self._client = hvac.Client(url=settings.vault_addr, timeout=settings.vault_timeout_seconds)
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
        try:
            return self._read_once(path, binding)
        except hvac.exceptions.Forbidden:
            if self._settings.vault_auth_method is not VaultAuthMethod.KUBERNETES:
                raise unavailable("vault_forbidden", "Vault refused the gateway's token for this path") from None
        # A Kubernetes-auth token expired: log in again once.
        try:
            self._login(force=True)
            return self._read_once(path, binding)
        except hvac.exceptions.Forbidden:
            raise unavailable("vault_forbidden", "Vault refused the gateway's role for this path") from None
        except (OSError, hvac.exceptions.VaultError, requests.RequestException) as exc:
            raise unavailable("vault_unavailable", f"Vault login failed ({type(exc).__name__})") from None

    def _read_once(self, path: str, binding: str) -> dict[str, str]:
        try:
            if not self._logged_in:
                self._login()
            response = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise GatewayError(
                424, "credentials_missing", f"no credentials are stored for binding {binding!r}"
            ) from None
        except hvac.exceptions.Forbidden:
            raise
        except (OSError, requests.RequestException, hvac.exceptions.VaultError) as exc:
            raise unavailable("vault_unavailable", f"Vault is unavailable ({type(exc).__name__})") from None
        data = (response or {}).get("data", {}).get("data")
        if not isinstance(data, dict):
            raise GatewayError(424, "credentials_missing", f"credentials for binding {binding!r} are empty")
        return {str(k): str(v) for k, v in data.items()}

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
