"""Vault: every seed path exists (KV v2 metadata only: values are never read) and each service policy is
exactly what the program declares (components/vault/policies.py)."""

from __future__ import annotations

from typing import Any

import httpx

from components.vault.paths import SEED_PATHS
from components.vault.policies import CONSUMERS, Mounts, consumer_policy_hcl
from tools.verify.inputs import VAULT_TOKEN_ENV, Target
from tools.verify.result import Check, fail, ok

AREA = "vault"


def mounts_of(target: Target) -> Mounts:
    return Mounts(secret=target.config.vault.secret_mount, kv=target.config.vault.kv_mount)


def _get(client: httpx.Client, path: str) -> httpx.Response:
    return client.get(f"/v1/{path}")


def first_difference(want: str, have: str) -> str:
    want_lines, have_lines = want.strip().splitlines(), have.strip().splitlines()
    for i, (w, h) in enumerate(zip(want_lines, have_lines, strict=False), start=1):
        if w.strip() != h.strip():
            return f"line {i} is {h.strip()!r}, the program declares {w.strip()!r}"
    if len(want_lines) != len(have_lines):
        return f"{len(have_lines)} lines, the program declares {len(want_lines)}"
    return "differs in whitespace only"


def _seed(client: httpx.Client, mounts: Mounts, seed: Any) -> Check:
    name = f"vault seed {mounts.of(seed)}/{seed.path}"
    response = _get(client, f"{mounts.of(seed)}/metadata/{seed.path}")
    if response.status_code == 404:
        return fail(AREA, name, "does not exist (pulumi up seeds it)")
    if response.status_code != 200:
        return fail(AREA, name, f"metadata read answered HTTP {response.status_code}")
    meta = response.json()["data"]
    current = str(meta.get("current_version", 0))
    version = (meta.get("versions") or {}).get(current) or {}
    if not meta.get("current_version") or version.get("deletion_time") or version.get("destroyed"):
        return fail(AREA, name, f"current version {current} is deleted or destroyed")
    return ok(AREA, name, f"exists (version {current})")


def _policy(client: httpx.Client, mounts: Mounts, consumer: str) -> Check:
    name = f"vault policy {consumer}"
    response = _get(client, f"sys/policies/acl/{consumer}")
    if response.status_code == 404:
        return fail(AREA, name, "does not exist (pulumi up creates it)")
    if response.status_code != 200:
        return fail(AREA, name, f"read answered HTTP {response.status_code}")
    have = response.json()["data"]["policy"]
    want = consumer_policy_hcl(consumer, mounts)
    if have.strip() == want.strip():
        return ok(AREA, name, "equals the declared policy")
    return fail(AREA, name, f"differs from the declared policy: {first_difference(want, have)}")


def check(target: Target) -> list[Check]:
    token = target.env.get(VAULT_TOKEN_ENV)
    if not token:
        return [fail(AREA, "vault", f"cannot read Vault: {VAULT_TOKEN_ENV} is not set (the token `pulumi up` uses)")]
    mounts = mounts_of(target)
    try:
        with httpx.Client(base_url=target.vault_addr, headers={"X-Vault-Token": token},
                          timeout=target.timeout) as client:
            return ([_seed(client, mounts, seed) for seed in SEED_PATHS]
                    + [_policy(client, mounts, consumer) for consumer in CONSUMERS])
    except httpx.HTTPError as exc:
        return [fail(AREA, "vault", f"Vault at {target.vault_addr} unreachable ({type(exc).__name__})")]


def service_jwt_secret(target: Target, path: str) -> str | None:
    """A service's signing secret, read only to sign the control-plane probe (never printed)."""
    token = target.env.get(VAULT_TOKEN_ENV)
    if not token:
        return None
    mount = target.config.vault.secret_mount
    with httpx.Client(base_url=target.vault_addr, headers={"X-Vault-Token": token}, timeout=target.timeout) as c:
        response = _get(c, f"{mount}/data/{path}")
    if response.status_code != 200:
        return None
    return (response.json()["data"]["data"] or {}).get("service_jwt_secret")
