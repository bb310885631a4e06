"""Vault policies generated from the path table: each consumer reads exactly its paths, nothing else.

Mount names come from stack config (``secretMount``/``kvMount``), so the table's mount is mapped before a
path is granted.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from components.vault.paths import (
    CONNECTOR_CONSUMER,
    CONNECTOR_CREDENTIALS_PREFIX,
    CONNECTOR_MOUNT,
    EXTERNAL_SECRETS_CONSUMER,
    FINGERPRINT_KEY_PATH,
    PROVISIONER_CONSUMER,
    SECRET_MOUNT,
    SEED_PATHS,
    SeedPath,
    paths_read_by,
)

# Policy names equal consumer names; the Kubernetes auth role of a consumer carries its policy.
CONSUMERS: tuple[str, ...] = (CONNECTOR_CONSUMER, PROVISIONER_CONSUMER, EXTERNAL_SECRETS_CONSUMER)
SEEDER_POLICY = "cmp-seeder"


class Mounts(BaseModel):
    """The mount names of this stack (the table's ``secret``/``kv`` by default)."""

    model_config = ConfigDict(frozen=True)

    secret: str = SECRET_MOUNT
    kv: str = CONNECTOR_MOUNT

    def of(self, seed: SeedPath) -> str:
        return {SECRET_MOUNT: self.secret, CONNECTOR_MOUNT: self.kv}.get(seed.mount, seed.mount)


def _rule(path: str, capabilities: tuple[str, ...]) -> str:
    caps = ", ".join(f'"{c}"' for c in capabilities)
    return f'path "{path}" {{\n  capabilities = [{caps}]\n}}\n'


def consumer_paths(consumer: str, mounts: Mounts | None = None) -> tuple[str, ...]:
    """The KV v2 API paths ``consumer`` may read (``secret/data/cmp/connector``, ``kv/data/connectors/*``)."""
    mounts = mounts or Mounts()
    if consumer not in CONSUMERS:
        raise KeyError(f"no Vault consumer {consumer!r} (known: {', '.join(CONSUMERS)})")
    paths = [f"{mounts.of(p)}/data/{p.path}" for p in paths_read_by(consumer)]
    if consumer == CONNECTOR_CONSUMER:
        paths.append(f"{mounts.kv}/data/{CONNECTOR_CREDENTIALS_PREFIX}/*")
    return tuple(paths)


def consumer_write_paths(consumer: str, mounts: Mounts | None = None) -> tuple[str, ...]:
    """The KV v2 API paths ``consumer`` may also write: only the gateway, only a per-user connection's credential
    (``kv/data/connectors/{org}/{project}/{binding}/users/{sub}``), where it writes back an OAuth token it
    refreshed (with check-and-set). The binding's own credentials stay read only."""
    mounts = mounts or Mounts()
    if consumer != CONNECTOR_CONSUMER:
        return ()
    return (f"{mounts.kv}/data/{CONNECTOR_CREDENTIALS_PREFIX}/+/+/+/users/+",)


def consumer_policy_hcl(consumer: str, mounts: Mounts | None = None) -> str:
    """HCL for one consumer: read its paths; no list, no metadata, no delete; write only its write paths (which
    list read again: the more specific path's rule is the one Vault applies there)."""
    header = f"# {consumer}: generated from components/vault/paths.py.\n"
    reads = "".join(_rule(path, ("read",)) for path in consumer_paths(consumer, mounts))
    writes = "".join(_rule(path, ("create", "read", "update")) for path in consumer_write_paths(consumer, mounts))
    return header + reads + writes


def seeder_policy_hcl(mounts: Mounts | None = None) -> str:
    """What the token running `pulumi up` needs for the seeds (not created by the stack: it must exist first)."""
    mounts = mounts or Mounts()
    rules = []
    seed_mounts = sorted({mounts.of(p) for p in SEED_PATHS})
    for mount in seed_mounts:
        rules.append(_rule(f"sys/internal/ui/mounts/{mount}", ("read",)))
        rules.append(_rule(f"{mount}/data/{FINGERPRINT_KEY_PATH}", ("create", "read", "update")))
        rules.append(_rule(f"{mount}/metadata/{FINGERPRINT_KEY_PATH}", ("read",)))
    for seed in SEED_PATHS:
        mount = mounts.of(seed)
        rules.append(_rule(f"{mount}/data/{seed.path}", ("create", "read", "update")))
        rules.append(_rule(f"{mount}/metadata/{seed.path}", ("read", "delete")))
        rules.append(_rule(f"{mount}/destroy/{seed.path}", ("update",)))
    return f"# {SEEDER_POLICY}: the seed provider's token.\n" + "".join(rules)
