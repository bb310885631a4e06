"""VaultSecretSeeds: the KV v2 mounts and one seed-if-absent secret per path of the table.

Mounts come first (every seed depends on its mount). A mount the stack created is kept on destroy unless
deleteOnDestroy is set (unmounting would delete every secret in it); an adopted mount is only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_vault as vault
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.vault.paths import SEED_PATHS, KeySource, SeedPath, check_rotations
from components.vault.policies import Mounts
from components.vault.seed_provider import VaultSeedProvider, operator_hint
from infra.naming import type_token

TYPE = type_token("VaultSecretSeeds")


class VaultSeed(pulumi.dynamic.Resource, module="vault", name="Seed"):
    """One KV v2 secret seeded if absent; its outputs hold names, version and fingerprints, never values."""

    version: pulumi.Output[int]
    present: pulumi.Output[list[str]]
    missing: pulumi.Output[list[str]]
    owned: pulumi.Output[list[str]]
    fingerprints: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        outputs = {"version": None, "present": None, "missing": None, "owned": None, "fingerprints": None}
        super().__init__(VaultSeedProvider(), name, {**props, **outputs}, opts)


class VaultSecretSeedsArgs(BaseModel):
    """Mount names, adopt/destroy behaviour and rotation triggers; the paths come from the table."""

    model_config = ConfigDict(frozen=True)

    secret_mount: str = "secret"
    kv_mount: str = "kv"
    adopt_mounts: bool = False
    delete_on_destroy: bool = False
    protect: bool = False
    rotations: dict[str, str] = Field(default_factory=dict)
    # Operator config keys the stack has set; a missing one is named in a preview warning. None: do not check.
    operator_keys_set: frozenset[str] | None = None
    seeds: tuple[SeedPath, ...] = SEED_PATHS

    @field_validator("rotations")
    @classmethod
    def _rotations(cls, value: dict[str, str]) -> dict[str, str]:
        return check_rotations(value)

    @property
    def mounts(self) -> Mounts:
        return Mounts(secret=self.secret_mount, kv=self.kv_mount)


def resource_suffix(seed: SeedPath) -> str:
    """``cmp/connector`` -> ``cmp-connector`` (resource names stay stable when the mount is renamed)."""
    return seed.path.replace("/", "-")


def seed_props(seed: SeedPath, mount: str, rotations: dict[str, str], delete_on_destroy: bool) -> dict[str, Any]:
    """The provider's inputs for one path: key names, sources, fixed values, config key names; no secret."""
    keys = []
    for key in seed.keys:
        if key.source is KeySource.PROGRAM:  # written by VaultProgramKey, never seeded
            continue
        entry: dict[str, Any] = {"name": key.name, "source": key.source.value,
                                 "rotation": rotations.get(f"{seed.path}.{key.name}", "")}
        if key.source is KeySource.FIXED:
            entry["value"] = key.value
        if key.source is KeySource.OPERATOR:
            entry["configKey"] = key.config_key
        keys.append(entry)
    return {"mount": mount, "path": seed.path, "keys": keys, "deleteOnDestroy": delete_on_destroy}


@dataclass(frozen=True)
class SecretRevision:
    """What rolls the workloads reading one Vault path when its values are rewritten.

    ``text`` names the path and the rotation triggers of its keys: a rotation changes it in the same `up` that
    writes the new value, and it is known in a preview (the Vault version is not, so the GitOps export stays
    whole). A workload puts it on its pod template and on its ExternalSecret, which also depends on ``seed``, so
    External Secrets re-reads Vault only after the write. ``text`` says nothing about any value."""

    text: str
    seed: pulumi.Resource


def revision_text(mount: str, seed: SeedPath, rotations: dict[str, str]) -> str:
    triggers = [f"{key.name}={rotations[f'{seed.path}.{key.name}']}"
                for key in seed.keys if f"{seed.path}.{key.name}" in rotations]
    return f"{mount}/{seed.path}: {','.join(triggers) if triggers else 'not rotated'}"


def unset_operator_keys(seeds: tuple[SeedPath, ...], keys_set: frozenset[str]) -> list[str]:
    """One warning line per operator key the stack has not set."""
    return [
        f"vault seed {seed.mount}/{seed.path}: operator key {key.name} is not set; set it with "
        f"{operator_hint(key.config_key or '')} (`pulumi up` fails unless Vault already holds it)"
        for seed in seeds for key in seed.keys
        if key.source is KeySource.OPERATOR and key.config_key not in keys_set
    ]


class VaultSecretSeeds(pulumi.ComponentResource):
    """The ``secret`` and ``kv`` KV v2 mounts and a VaultSeed per table path."""

    def __init__(self, name: str, args: VaultSecretSeedsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        mounts = args.mounts
        self.mounts: dict[str, pulumi.CustomResource] = {
            path: self._mount(path, args) for path in dict.fromkeys((mounts.secret, mounts.kv))
        }
        if args.operator_keys_set is not None:
            for line in unset_operator_keys(args.seeds, args.operator_keys_set):
                pulumi.log.warn(line, resource=self)
        self.seeds: dict[str, VaultSeed] = {}
        for seed in args.seeds:
            mount = mounts.of(seed)
            self.seeds[seed.path] = VaultSeed(
                f"vault-seed-{resource_suffix(seed)}",
                seed_props(seed, mount, args.rotations, args.delete_on_destroy),
                pulumi.ResourceOptions(parent=self, depends_on=[self.mounts[mount]], protect=args.protect),
            )
        self.paths = {seed.path: seed for seed in args.seeds}
        self.mount_of = mounts.of  # the mount a table path lives in, under this stack's mount names
        # Per path, what the workloads reading it roll on (ServiceArgs.secret_revisions).
        self.revisions: dict[str, SecretRevision] = {
            seed.path: SecretRevision(revision_text(mounts.of(seed), seed, args.rotations), self.seeds[seed.path])
            for seed in args.seeds
        }
        self.register_outputs({
            "mounts": list(self.mounts),
            "paths": {p: [k.name for k in s.keys] for p, s in self.paths.items()},
            "versions": {p: seed.version for p, seed in self.seeds.items()},
        })

    def _mount(self, path: str, args: VaultSecretSeedsArgs) -> pulumi.CustomResource:
        name = f"vault-mount-{path}"
        if args.adopt_mounts:
            return vault.Mount.get(name, path, opts=pulumi.ResourceOptions(parent=self))
        return vault.Mount(
            name,
            path=path,
            type="kv",
            options={"version": "2"},
            description=f"cmp-platform KV v2 ({path})",
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=not args.delete_on_destroy
            ),
        )
