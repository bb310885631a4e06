"""The seed provider: a Pulumi dynamic provider over hvac with seed-if-absent semantics.

pulumi-vault's ``kv.SecretV2`` keeps values in state and reverts out-of-band rotations; this provider keeps
only the path, key names, the Vault version and keyed fingerprints. Generated values are made here, written
once with check-and-set, and never returned.

Inputs (``props``): ``mount``, ``path``, ``keys`` (``[{name, source, value?, configKey?, rotation}]``),
``deleteOnDestroy``. Outputs add ``version``, ``present``, ``missing``, ``owned`` and ``fingerprints``.
"""

from __future__ import annotations

import logging
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pydantic import ValidationError

from components.vault import kv
from components.vault.client import VaultSeedError, VaultSettings, require_usable, settings_from_config
from components.vault.paths import SeedPath

log = logging.getLogger(__name__)

REPLACE_ON = ("mount", "path")


def _spec(keys: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """What defines a key, rotation aside (a changed spec is an update, never a rewrite of a present value)."""
    return [(k["name"], k["source"], k.get("value") or "", k.get("configKey") or "") for k in keys]


def _rotations(keys: list[dict[str, Any]]) -> dict[str, str]:
    return {k["name"]: str(k.get("rotation") or "") for k in keys}


def _seed_key(key: Any) -> Any:
    """A provider input key as the SeedKey model's fields (``configKey`` is ``config_key`` there)."""
    if not isinstance(key, dict):
        return key
    return {"name": key.get("name"), "source": key.get("source"), "value": key.get("value"),
            "config_key": key.get("configKey")}


def _field(loc: tuple[Any, ...]) -> str:
    """A validation error's location as the input field it names: ``('keys', 1, 'name')`` -> ``keys[1].name``;
    a rule over all keys (none, repeated) names ``keys``."""
    if not loc:
        return "keys"
    head, *rest = loc
    text = str(head)
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else f".{'configKey' if part == 'config_key' else part}"
    return text


def _reason(error: Any) -> str:
    """A validation error's message; a field's own value is named when the message does not name it."""
    message = error["msg"].removeprefix("Value error, ")
    return message if isinstance(error["input"], dict) or error["type"] == "value_error" else \
        f"{message} (got {error['input']!r})"


def operator_hint(config_key: str) -> str:
    return f"`pulumi config set --secret cmp-platform:{config_key} <value>`"


class VaultSeedProvider(ResourceProvider):
    """Seed-if-absent KV v2 secrets. Holds no client and no settings when pickled (they arrive in configure)."""

    def configure(self, req: ConfigureRequest) -> None:
        self._settings = settings_from_config(req.config.get)
        self._config_get = req.config.get

    # ---- helpers -----------------------------------------------------------------------------------------
    def _connect(self) -> tuple[VaultSettings, Any]:
        settings = getattr(self, "_settings", None) or settings_from_config(lambda _key: None)
        settings = require_usable(settings)
        return settings, settings.client()

    def _operator_value(self, config_key: str) -> str | None:
        get = getattr(self, "_config_get", None)
        value = get(f"cmp-platform:{config_key}") if get else None
        return None if value in (None, "") else str(value)

    def _value_for(self, key: dict[str, Any]) -> str:
        if key["source"] == "generated":
            return kv.generate_value()
        if key["source"] == "fixed":
            return str(key["value"])
        value = self._operator_value(key["configKey"])
        if value is None:  # checked for every key before any write; kept as a guard
            raise VaultSeedError(f"operator key {key['name']} is not set: {operator_hint(key['configKey'])}")
        return value

    def _require_operator_values(self, props: dict[str, Any], names: list[str]) -> None:
        unset = [
            k for k in props["keys"]
            if k["name"] in names and k["source"] == "operator" and self._operator_value(k["configKey"]) is None
        ]
        if unset:
            how = "; ".join(f"{k['name']}: run {operator_hint(k['configKey'])}" for k in unset)
            raise VaultSeedError(
                f"{props['mount']}/{props['path']} needs operator-supplied key(s) that are not in Vault and not "
                f"set in the stack, so nothing was written. {how}"
            )

    def _apply(self, props: dict[str, Any], rotate: list[str], owned: list[str]) -> dict[str, Any]:
        """Seed absent keys and rotate ``rotate`` in one cas write; returns the outputs."""
        settings, client = self._connect()
        mount, path = props["mount"], props["path"]
        kv.ensure_kv2(client, settings, mount)
        state = kv.read_state(client, settings, mount, path)
        names = [k["name"] for k in props["keys"]]
        to_write = [n for n in names if n not in state.data or n in rotate]
        version = state.version
        if to_write:
            self._require_operator_values(props, to_write)
            fresh = {k["name"]: self._value_for(k) for k in props["keys"] if k["name"] in to_write}
            version = kv.write_cas(client, settings, mount, path, {**state.data, **fresh}, state.version)
            state = kv.SecretState(version=version, data={**state.data, **fresh})
            log.info("vault seed %s/%s: wrote %s at version %d", mount, path, ", ".join(to_write), version)
        owned = sorted(set(owned) | set(to_write))
        return self._outputs(props, client, settings, state, owned)

    @staticmethod
    def _outputs(
        props: dict[str, Any], client: Any, settings: VaultSettings, state: kv.SecretState, owned: list[str],
        create_key: bool = True,
    ) -> dict[str, Any]:
        mount, path = props["mount"], props["path"]
        names = [k["name"] for k in props["keys"]]
        present = [n for n in names if n in state.data]
        fingerprints: dict[str, str] = {}
        hmac_key = kv.fingerprint_key(client, settings, mount, create=create_key) if present else None
        if hmac_key:
            fingerprints = {n: kv.fingerprint(hmac_key, mount, path, n, state.data[n]) for n in present}
        return {
            "mount": mount,
            "path": path,
            "keys": props["keys"],
            "deleteOnDestroy": bool(props.get("deleteOnDestroy", False)),
            "version": state.version,
            "present": present,
            "missing": [n for n in names if n not in state.data],
            "owned": [n for n in owned if n in names],
            "fingerprints": fingerprints,
        }

    # ---- the ResourceProvider protocol -------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """The inputs must describe a path of the table: the SeedPath model's own rules, each failure named by
        its field (``keys[1].name``)."""
        keys = news.get("keys")
        try:
            SeedPath(mount=news.get("mount"), path=news.get("path"),
                     keys=[_seed_key(k) for k in keys] if isinstance(keys, list) else keys)
        except ValidationError as exc:
            return CheckResult(news, [CheckFailure(_field(e["loc"]), _reason(e)) for e in exc.errors()])
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [f for f in REPLACE_ON if olds.get(f) != news.get(f)]
        if replaces:
            return DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
        old_keys, new_keys = olds.get("keys") or [], news.get("keys") or []
        present = set(olds.get("present") or [])
        old_rot, new_rot = _rotations(old_keys), _rotations(new_keys)
        changed = (
            _spec(old_keys) != _spec(new_keys)
            or any(old_rot.get(n, new_rot[n]) != new_rot[n] for n in new_rot)
            or any(n not in present for n in new_rot)  # drift: a key deleted out of band is seeded again
            or bool(olds.get("deleteOnDestroy", False)) != bool(news.get("deleteOnDestroy", False))
        )
        return DiffResult(changes=changed, replaces=[], stables=list(REPLACE_ON), delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props, rotate=[], owned=[])
        return CreateResult(f"{props['mount']}/{props['path']}", outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old_rot = _rotations(olds.get("keys") or [])
        rotate = [n for n, trigger in _rotations(news["keys"]).items() if n in old_rot and old_rot[n] != trigger]
        return UpdateResult(self._apply(news, rotate=rotate, owned=list(olds.get("owned") or [])))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        settings, client = self._connect()
        state = kv.read_state(client, settings, props["mount"], props["path"])
        # A refresh writes nothing: without a fingerprint key yet, fingerprints are simply left out.
        outs = self._outputs(props, client, settings, state, list(props.get("owned") or []), create_key=False)
        before = props.get("fingerprints") or {}
        changed = [n for n, fp in outs["fingerprints"].items() if before.get(n) not in (None, fp)]
        if changed:
            log.warning("vault seed %s: value(s) of %s changed outside Pulumi; kept as they are",
                        id_, ", ".join(changed))
        if outs["missing"]:
            log.warning(
                "vault seed %s: key(s) %s missing in Vault; the next `pulumi up` seeds them again",
                id_, ", ".join(outs["missing"]),
            )
        return ReadResult(id_, outs)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if not props.get("deleteOnDestroy"):
            return  # destroy leaves seeded secrets in Vault unless the stack opts in
        settings, client = self._connect()
        owned = list(props.get("owned") or [])
        if owned:
            kv.delete_keys(client, settings, props["mount"], props["path"], owned)
