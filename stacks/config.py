"""One stack's config: the components' models composed, the rules that span pieces, and loading.

Each piece owns the model of its slice (``components/<piece>/config.py``); this module puts them under
their stack keys (``cmp-platform:connectorGateway`` ...), adds the stack-wide keys and the cross-field
rules, and reads the running stack's config through ``pulumi.Config``. Every problem is one ConfigError
line naming the key, the value and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from components.connector_gateway.config import ConnectorGatewayConfig
from components.gateway_billing.config import GatewayBillingConfig
from components.images.config import ImagesConfig
from components.provisioner.config import ProvisionerConfig
from components.ragflow.config import RagflowConfig
from components.saleor.config import SaleorConfig
from components.vault.config import VaultConfig
from components.vault.paths import operator_keys
from infra.config import (
    MISSING,
    REDACTED,
    ConfigError,
    DnsLabel,
    HttpUrl,
    Model,
    Resources,
    Secret,
    cpu_millis,
    error_from,
    has_digest,
    memory_bytes,
)
from infra.naming import PROJECT

# Secrets: never in a stack file as plain text. The operator keys come from the Vault path table; all are
# set with `pulumi config set --secret`.
SALEOR_STAFF_PASSWORD = "saleorStaffPassword"
OPERATOR_SECRET_KEYS: tuple[str, ...] = tuple(key.config_key for _path, key in operator_keys() if key.config_key)
SECRET_KEYS: tuple[str, ...] = (SALEOR_STAFF_PASSWORD, *OPERATOR_SECRET_KEYS)


Environment = Literal["dev", "staging", "prod"]
KUBERNETES_VERSIONS = (25, 37)  # the schema versions kubernetes-validate ships


class StackConfig(Model):
    """Everything one stack deploys, validated."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                              arbitrary_types_allowed=True)

    environment: Environment
    namespace: DnsLabel = "cmp"
    kubernetes_version: str = "1.33"
    cluster_secret_store: DnsLabel = "vault-backend"
    control_plane_url: HttpUrl
    debug: bool = False
    protect: bool | None = None  # None: protect in prod only
    require_image_digest: bool | None = None  # None: required in prod only
    connector_gateway: ConnectorGatewayConfig = Field(default_factory=ConnectorGatewayConfig)
    provisioner: ProvisionerConfig = Field(default_factory=ProvisionerConfig)
    gateway_billing: GatewayBillingConfig = Field(default_factory=GatewayBillingConfig)
    ragflow: RagflowConfig = Field(default_factory=lambda: RagflowConfig(platforms=["linux/amd64", "linux/arm64"]))
    vault: VaultConfig = Field(default_factory=VaultConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)  # build from service_src, or pinned refs
    saleor: SaleorConfig
    secrets: dict[str, Secret] = Field(default_factory=dict, exclude=True)

    @field_validator("kubernetes_version")
    @classmethod
    def _k8s(cls, value: str) -> str:
        match = re.match(r"^1\.(\d+)$", value)
        low, high = KUBERNETES_VERSIONS
        if not match or not low <= int(match[1]) <= high:
            raise ValueError(f"must be a Kubernetes minor version 1.{low} to 1.{high}, like 1.33")
        return value

    @property
    def protected(self) -> bool:
        """Resources holding state or secrets get ``protect`` (always in prod)."""
        return self.environment == "prod" if self.protect is None else self.protect

    @property
    def digests_required(self) -> bool:
        return self.environment == "prod" if self.require_image_digest is None else self.require_image_digest

    def secret(self, key: str) -> Any:
        """A declared secret as a secret ``pulumi.Output``."""
        if key not in self.secrets:
            raise KeyError(f"{key!r} is not a declared secret (declared: {', '.join(SECRET_KEYS)})")
        return self.secrets[key].output()


# ---------------------------------------------------------------------------------------------------------
# Cross-field rules (raised as ConfigError directly, naming the exact key)


def _check_resources(key: str, res: Resources) -> None:
    if cpu_millis(res.limits.cpu) < cpu_millis(res.requests.cpu):
        raise ConfigError(f"{key}.limits.cpu", res.limits.cpu, f"must be >= requests.cpu ({res.requests.cpu})")
    if memory_bytes(res.limits.memory) < memory_bytes(res.requests.memory):
        raise ConfigError(f"{key}.limits.memory", res.limits.memory,
                          f"must be >= requests.memory ({res.requests.memory})")


def _check_stack_rules(cfg: StackConfig) -> None:
    for key, res in (("connectorGateway.resources", cfg.connector_gateway.resources),
                     ("provisioner.resources", cfg.provisioner.resources),
                     ("ragflow.resources", cfg.ragflow.resources)):
        _check_resources(key, res)
    rag = cfg.ragflow
    if rag.enabled and rag.platforms is None and not rag.registry_preflight:
        raise ConfigError("ragflow.platforms", MISSING,
                          "list the image's platforms (e.g. [linux/amd64]) or set ragflow.registryPreflight: true")
    if cfg.environment == "prod":
        if cfg.protect is False:
            raise ConfigError("protect", False, "prod protects resources holding state or secrets")
        if cfg.require_image_digest is False:
            raise ConfigError("requireImageDigest", False, "prod pins every image by digest")
    if cfg.digests_required and cfg.images.build and not cfg.images.push:
        raise ConfigError("images.push", False,
                          f"{cfg.environment} requires digest-pinned images, which only a pushed build has")
    if cfg.digests_required:
        for key, image in (("connectorGateway.image", cfg.connector_gateway.image),
                           ("provisioner.image", cfg.provisioner.image)):
            if not cfg.images.build and not has_digest(image):
                raise ConfigError(key, image, f"{cfg.environment} requires an image pinned by @sha256 digest")
        if cfg.ragflow.enabled and not cfg.ragflow.digest:
            raise ConfigError("ragflow.digest", MISSING,
                              f"{cfg.environment} requires the Ragflow image pinned by a sha256 digest")


# ---------------------------------------------------------------------------------------------------------
# Parsing


def parse_stack_config(raw: Mapping[str, Any], secrets: Mapping[str, Any]) -> StackConfig:
    """Validate a stack's config without Pulumi: ``raw`` holds bare keys (``namespace``, ``ragflow``, ...)
    with structured values already decoded; ``secrets`` maps every key of ``SECRET_KEYS`` to its value."""
    raw = {k.removeprefix(f"{PROJECT}:"): v for k, v in raw.items()}
    for key in SECRET_KEYS:
        if key in raw:
            raise ConfigError(key, REDACTED, "is a secret: set it with `pulumi config set --secret`, "
                                             "never as plain text")
        if key not in secrets or secrets[key] is None:
            raise ConfigError(key, MISSING, "secret is missing: set it with "
                                             f"`pulumi config set --secret {key} <value>`")
    unknown = sorted(set(secrets) - set(SECRET_KEYS))
    if unknown:
        raise ConfigError(unknown[0], REDACTED, f"unknown secret (declared: {', '.join(SECRET_KEYS)})")
    try:
        cfg = StackConfig.model_validate({**raw, "secrets": {k: Secret(v) for k, v in secrets.items()}})
    except ValidationError as exc:
        raise error_from(exc, raw) from None
    _check_stack_rules(cfg)
    return cfg


def _structured_keys() -> set[str]:
    """Stack keys whose value is an object (``cmp-platform:ragflow``): Pulumi hands those over as JSON text."""
    return {field.alias or name for name, field in StackConfig.model_fields.items()
            if name != "secrets" and isinstance(field.annotation, type) and issubclass(field.annotation, Model)}


def load_stack_config() -> StackConfig:
    """Read and validate ``cmp-platform:*`` of the running stack; secrets stay secret Outputs.

    The language host hands the program its config as the ``PULUMI_CONFIG`` environment bag
    (``pulumi.runtime.get_config_env``); that bag is the only public way to list the keys that are set,
    which the unknown-key check needs. Values are read through ``pulumi.Config``.
    """
    import pulumi
    from pulumi.runtime import get_config, get_config_env, is_config_secret

    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    structured = _structured_keys()
    raw: dict[str, Any] = {}
    for full_key in get_config_env():
        if not full_key.startswith(prefix):
            continue  # other namespaces (vault:, kubernetes:) belong to their providers
        key = full_key.removeprefix(prefix)
        if key in SECRET_KEYS:
            if not is_config_secret(full_key):
                raise ConfigError(key, REDACTED, "must be set with `pulumi config set --secret` (a secure: value)")
            continue
        if key in structured:
            try:
                raw[key] = config.get_object(key)
            except pulumi.ConfigTypeError:
                raise ConfigError(key, config.get(key), "must be a YAML object (structured config)") from None
        else:
            raw[key] = config.get(key)
    secrets = {key: config.get_secret(key) for key in SECRET_KEYS if get_config(prefix + key) is not None}
    return parse_stack_config(raw, secrets)
