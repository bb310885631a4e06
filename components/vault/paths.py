"""The one Vault path table.

Seeds, policies, ExternalSecrets, the services' defaults and the end-to-end smoke all read their paths from
here, so a path changes in one place.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

SECRET_MOUNT = "secret"
CONNECTOR_MOUNT = "kv"
# Tenant connector credentials live at kv/data/connectors/{org}/{project}/{binding}.
CONNECTOR_CREDENTIALS_PREFIX = "connectors"

# One mount or path segment, and a key name (it becomes an env var name); the seed provider checks with these too.
SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
KEY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CONFIG_KEY = re.compile(r"^[a-z][A-Za-z0-9]*$")

# The consumers that get a Vault policy (and a Kubernetes auth role) generated from this table.
CONNECTOR_CONSUMER = "cmp-connector"
PROVISIONER_CONSUMER = "cmp-provisioner"
EXTERNAL_SECRETS_CONSUMER = "cmp-external-secrets"
# Workloads whose secrets reach them through an ExternalSecret: the ESO store may read exactly their paths.
EXTERNAL_SECRET_WORKLOADS: tuple[str, ...] = (CONNECTOR_CONSUMER, PROVISIONER_CONSUMER)
# Where the seed provider keeps the HMAC key of its fingerprints (in each seed's own mount, never in state).
FINGERPRINT_KEY_PATH = "cmp/seed-fingerprint-key"


class KeySource(StrEnum):
    GENERATED = "generated"  # made inside the seed provider; never in state
    FIXED = "fixed"  # a plain, non-secret value from this table
    OPERATOR = "operator"  # a stack secret that an operator sets with `pulumi config set --secret`
    PROGRAM = "program"  # another resource's secret output, written by VaultProgramKey; seeds leave it alone


class SeedKey(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    source: KeySource
    value: str | None = None  # FIXED only
    config_key: str | None = None  # OPERATOR only: the cmp-platform:<config_key> stack secret

    @field_validator("name")
    @classmethod
    def _name_is_env_safe(cls, name: str) -> str:
        if not KEY_NAME.match(name):
            raise ValueError(f"vault key name {name!r} must match [a-z][a-z0-9_]* (it becomes an env var name)")
        return name

    @model_validator(mode="after")
    def _source_fields(self) -> SeedKey:
        if self.source is KeySource.FIXED and not self.value:
            raise ValueError(f"vault key {self.name!r} is fixed: it needs a non-empty value")
        if self.source is not KeySource.FIXED and self.value is not None:
            raise ValueError(f"vault key {self.name!r} is {self.source.value}: only fixed keys carry a value")
        if self.source is KeySource.OPERATOR:
            if not self.config_key or not _CONFIG_KEY.match(self.config_key):
                raise ValueError(
                    f"vault key {self.name!r} is operator-supplied: config_key must be a camelCase stack "
                    f"config key, got {self.config_key!r}"
                )
        elif self.config_key is not None:
            raise ValueError(f"vault key {self.name!r} is {self.source.value}: only operator keys name a config_key")
        return self

    @property
    def env_name(self) -> str:
        """The variable an ExternalSecret exposes this key as."""
        return self.name.upper()


class SeedPath(BaseModel):
    """One KV v2 secret: where it lives, its keys, and which consumers may read it."""

    model_config = ConfigDict(frozen=True)

    mount: str
    path: str
    keys: tuple[SeedKey, ...]
    readers: tuple[str, ...] = ()

    @field_validator("mount")
    @classmethod
    def _mount_is_clean(cls, mount: str) -> str:
        if not SEGMENT.match(mount):
            raise ValueError(f"vault mount {mount!r} must be one segment of [a-z0-9_-]")
        return mount

    @model_validator(mode="after")
    def _keys_unique(self) -> SeedPath:
        names = [k.name for k in self.keys]
        if not names:
            raise ValueError(f"vault path {self.mount}/{self.path} has no keys")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"vault path {self.mount}/{self.path} repeats key(s) {', '.join(dupes)}")
        return self

    @field_validator("path")
    @classmethod
    def _path_is_clean(cls, path: str) -> str:
        segments = path.split("/")
        if not all(SEGMENT.match(s) for s in segments):
            raise ValueError(
                f"vault path {path!r} must be '/'-separated segments of [a-z0-9_-] (no '..', no empty segment)"
            )
        return path

    @property
    def data_path(self) -> str:
        """The KV v2 API path a policy grants (``secret/data/cmp/connector``)."""
        return f"{self.mount}/data/{self.path}"

    def key(self, name: str) -> SeedKey:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(f"{self.mount}/{self.path} has no key {name!r}")


def _gen(name: str) -> SeedKey:
    return SeedKey(name=name, source=KeySource.GENERATED)


def _op(name: str, config_key: str) -> SeedKey:
    return SeedKey(name=name, source=KeySource.OPERATOR, config_key=config_key)


CONNECTOR = SeedPath(
    mount=SECRET_MOUNT,
    path="cmp/connector",
    keys=(_gen("service_jwt_secret"),),
    readers=("cmp-connector",),
)
PROVISIONER = SeedPath(
    mount=SECRET_MOUNT,
    path="cmp/provisioner",
    keys=(
        _gen("saleor_webhook_secret"),
        _gen("service_jwt_secret"),
        _op("database_url", "provisionerDatabaseUrl"),
        # The Saleor app's auth token (MANAGE_ORDERS only): the provisioner's catch-up reads orders as the app.
        SeedKey(name="saleor_app_token", source=KeySource.PROGRAM),
    ),
    readers=("cmp-provisioner",),
)
RUNNER = SeedPath(
    mount=SECRET_MOUNT,
    path="cmp/runner",
    keys=(_op("langflow_api_key", "langflowApiKey"), _op("openai_api_key", "openaiApiKey")),
    readers=("cmp-runner",),
)
MINIO = SeedPath(
    mount=SECRET_MOUNT,
    path="cmp/minio",
    keys=(SeedKey(name="access_key", source=KeySource.FIXED, value="cmp-artifacts"), _gen("secret_key")),
    readers=("cmp-minio",),
)

SEED_PATHS: tuple[SeedPath, ...] = (CONNECTOR, PROVISIONER, RUNNER, MINIO)


def seed_path(path: str) -> SeedPath:
    """Look a seed path up by its path under the mount (``cmp/connector``)."""
    for entry in SEED_PATHS:
        if entry.path == path:
            return entry
    known = ", ".join(p.path for p in SEED_PATHS)
    raise KeyError(f"no Vault seed path {path!r} in components/vault/paths.py (known: {known})")


def paths_read_by(consumer: str) -> tuple[SeedPath, ...]:
    """The seed paths a consumer reads (its policy grants read on exactly these)."""
    if consumer == EXTERNAL_SECRETS_CONSUMER:
        return tuple(p for p in SEED_PATHS if set(p.readers) & set(EXTERNAL_SECRET_WORKLOADS))
    return tuple(p for p in SEED_PATHS if consumer in p.readers)


def operator_keys() -> tuple[tuple[SeedPath, SeedKey], ...]:
    """Every operator-supplied key with its path: what `pulumi config set --secret` must provide."""
    return tuple((p, k) for p in SEED_PATHS for k in p.keys if k.source is KeySource.OPERATOR)


def connector_credentials_path(org: str, project: str, binding: str) -> str:
    """KV v2 API path of one tenant binding's credentials."""
    return f"{CONNECTOR_MOUNT}/data/{CONNECTOR_CREDENTIALS_PREFIX}/{org}/{project}/{binding}"


def rotation_target(key: str) -> tuple[SeedPath, SeedKey]:
    """Resolve a rotation key ``<path>.<key>`` (``cmp/connector.service_jwt_secret``) against the table."""
    path, _, name = key.rpartition(".")
    try:
        seed = seed_path(path)
        found = seed.key(name)
    except KeyError as exc:
        raise ValueError(
            f"rotation key {key!r} must be <path>.<key> of the Vault path table "
            f"(e.g. cmp/connector.service_jwt_secret): {exc.args[0]}"
        ) from None
    if found.source is KeySource.PROGRAM:
        raise ValueError(f"rotation key {key!r} is written from another resource's output, not seeded: it changes "
                         "when its source does (docs/saleor.md, the app token)")
    return seed, found


def check_rotations(rotations: dict[str, str]) -> dict[str, str]:
    """Every rotation trigger names a real path and key, and is a non-empty string."""
    for key, trigger in rotations.items():
        rotation_target(key)
        if not str(trigger).strip():
            raise ValueError(f"rotation trigger of {key!r} must be a non-empty string (e.g. a date)")
    return rotations
