"""VaultProgramKey: one key of a table path whose value another resource makes (KeySource.PROGRAM), written by
Pulumi into Vault beside the path's seeded keys, so the workload's ExternalSecret brings it in like the others.

The one such key is the Saleor app's auth token (`cmp/provisioner.saleor_app_token`): the provisioner reads
Saleor's orders as the app "CMP Provisioner" with it. Unlike a seed it is overwritten whenever its source
changes (a replaced app has a new token). The write is a check-and-set read-modify-write of the path: the
path's other keys stay as they are, and the seed provider keeps this one when it writes (it writes every key
it finds). The value is a secret input and output (encrypted in state, `[secret]` in a preview); destroying the
resource removes the key. Vault settings are the seed provider's (`vault:address`, `vault:token`, ...).
"""

from __future__ import annotations

import logging
from typing import Any

import pulumi
from pulumi.dynamic import ConfigureRequest, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.vault import kv
from components.vault.client import VaultSettings, require_usable, settings_from_config
from components.vault.paths import KeySource, SeedPath

log = logging.getLogger(__name__)

_CAS_ATTEMPTS = 3


class VaultProgramKeyProvider(ResourceProvider):
    """Writes `props.value` at `props.mount`/`props.path` under `props.key` (see the module docstring)."""

    def configure(self, req: ConfigureRequest) -> None:
        self._settings = settings_from_config(req.config.get)

    def _connect(self) -> tuple[VaultSettings, Any]:
        settings = require_usable(getattr(self, "_settings", None) or settings_from_config(lambda _key: None))
        return settings, settings.client()

    def _write(self, props: dict[str, Any]) -> dict[str, Any]:
        settings, client = self._connect()
        mount, path, key = props["mount"], props["path"], props["key"]
        kv.ensure_kv2(client, settings, mount)
        for attempt in range(1, _CAS_ATTEMPTS + 1):
            state = kv.read_state(client, settings, mount, path)
            if state.data.get(key) == props["value"]:
                break
            try:
                version = kv.write_cas(client, settings, mount, path, {**state.data, key: props["value"]},
                                       state.version)
            except kv.CasConflict:  # a seed wrote the path meanwhile: read it again
                if attempt == _CAS_ATTEMPTS:
                    raise
                continue
            log.info("vault %s/%s: wrote %s at version %d", mount, path, key, version)
            break
        return dict(props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [f for f in ("mount", "path", "key") if olds.get(f) != news.get(f)]
        return DiffResult(changes=bool(replaces) or olds.get("value") != news.get("value"), replaces=replaces,
                          delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['mount']}/{props['path']}#{props['key']}", self._write(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._write(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        settings, client = self._connect()
        state = kv.read_state(client, settings, props["mount"], props["path"])
        value = state.data.get(props["key"])
        if value != props.get("value"):  # drift: the next `pulumi up` writes it again
            log.warning("vault %s: the value in Vault differs from the program's (or is gone)", id_)
        return ReadResult(id_, {**props, "value": value})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        settings, client = self._connect()
        kv.delete_keys(client, settings, props["mount"], props["path"], [props["key"]])


class VaultProgramKey(pulumi.dynamic.Resource, module="vault", name="ProgramKey"):
    """One PROGRAM key of `seed` (components/vault/paths.py) holding `value`, a secret from another resource."""

    def __init__(self, name: str, *, seed: SeedPath, mount: str, key: str, value: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        if seed.key(key).source is not KeySource.PROGRAM:
            raise ValueError(f"vault key {seed.path}.{key} is {seed.key(key).source.value}, not program-written")
        props = {"mount": mount, "path": seed.path, "key": key, "value": pulumi.Output.secret(value)}
        secret = pulumi.ResourceOptions(additional_secret_outputs=["value"])
        super().__init__(VaultProgramKeyProvider(), name, props, pulumi.ResourceOptions.merge(secret, opts))
