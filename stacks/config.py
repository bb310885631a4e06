"""One stack's config: the components' models composed, the rules that span pieces, and loading.

Each piece owns the model of its slice (``components/<piece>/config.py``); this module puts them under
their stack keys (``cmp-platform:connectorGateway`` ...), adds the stack-wide keys and the cross-field
rules, and reads the running stack's config through ``pulumi.Config``. Every problem is one ConfigError
line naming the key, the value and the rule.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from components.connector_gateway.config import ConnectorGatewayConfig
from components.gateway_billing.config import GatewayBillingConfig
from components.images.config import ImagesConfig
from components.monitoring.config import MonitoringConfig
from components.provisioner.config import ProvisionerConfig, database_url_problem
from components.ragflow.config import RagflowConfig
from components.saleor.config import SaleorConfig
from components.vault.config import VaultConfig
from components.vault.paths import operator_keys
from components.workload.config import ServiceEnvironment, ServicePlatform
from infra.config import (
    MISSING,
    MODEL_CONFIG,
    REDACTED,
    ConfigError,
    DnsLabel,
    HttpUrl,
    Model,
    Resources,
    Secret,
    cpu_millis,
    dns_label,
    errors_from,
    has_digest,
    holds_placeholder,
    http_url,
    memory_bytes,
    raise_all,
    redacted,
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

    model_config = ConfigDict(MODEL_CONFIG, arbitrary_types_allowed=True)

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
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)  # ServiceMonitors + PrometheusRules
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
# Cross-field rules (each a ConfigError naming the exact key; all of them are reported together)


def _resource_errors(key: str, res: Resources) -> list[ConfigError]:
    if holds_placeholder(res.model_dump()):  # a secret placeholder is not judged
        return []
    found = []
    if cpu_millis(res.limits.cpu) < cpu_millis(res.requests.cpu):
        found.append(ConfigError(f"{key}.limits.cpu", res.limits.cpu, f"must be >= requests.cpu ({res.requests.cpu})"))
    if memory_bytes(res.limits.memory) < memory_bytes(res.requests.memory):
        found.append(ConfigError(f"{key}.limits.memory", res.limits.memory,
                                 f"must be >= requests.memory ({res.requests.memory})"))
    return found


def _prod_errors(cfg: StackConfig) -> list[ConfigError]:
    found = []
    if cfg.environment == "prod" and cfg.protect is False:
        found.append(ConfigError("protect", False, "prod protects resources holding state or secrets"))
    if cfg.environment == "prod" and cfg.require_image_digest is False:
        found.append(ConfigError("requireImageDigest", False, "prod pins every image by digest"))
    if cfg.digests_required and cfg.images.build and not cfg.images.push:
        found.append(ConfigError("images.push", False,
                                 f"{cfg.environment} requires digest-pinned images, which only a pushed build has"))
    return found


def _digest_errors(cfg: StackConfig) -> list[ConfigError]:
    """Digests come from where they are known: the image build (images.build), the registry (Ragflow's
    registryPreflight), or the operator who read them there. Never typed into a stack file by hand."""
    if not cfg.digests_required:
        return []
    found = [ConfigError(key, image, (
        f"{cfg.environment} requires an image pinned by @sha256 digest: build it in the stack "
        f"(`pulumi config set --path {PROJECT}:images.build true`) or pin the digest `make images` "
        f"printed (`pulumi config set --path {PROJECT}:{key} <repo>:<tag>@sha256:<digest>`)"))
        for key, image in (("connectorGateway.image", cfg.connector_gateway.image),
                           ("provisioner.image", cfg.provisioner.image))
        if not cfg.images.build and not has_digest(image) and not holds_placeholder(image)]
    if cfg.ragflow.enabled and not cfg.ragflow.digest and not cfg.ragflow.registry_preflight:
        found.append(ConfigError("ragflow.digest", MISSING, (
            f"{cfg.environment} requires the Ragflow image pinned by digest: let the registry resolve "
            f"ragflow.tag (`pulumi config set --path {PROJECT}:ragflow.registryPreflight true`) or pin it "
            f"(`pulumi config set --path {PROJECT}:ragflow.digest sha256:<index digest of the tag>`)")))
    return found


def service_environments(cfg: StackConfig) -> dict[str, ServiceEnvironment]:
    """Each service's environment as the stack renders it (by slice key), through the service's own settings
    model: a value the service would refuse is a ConfigError naming its stack key."""
    platform = ServicePlatform(cfg.namespace, cfg.control_plane_url, cfg.debug)
    origin = REDACTED if holds_placeholder(cfg.saleor.api_url) else cfg.saleor.origin  # a secret's origin is one
    return {"connectorGateway": cfg.connector_gateway.environment(platform, cfg.vault),
            "provisioner": cfg.provisioner.environment(platform, origin, cfg.saleor.api_url)}


def stack_rule_errors(cfg: StackConfig) -> list[ConfigError]:
    """Every rule across keys the stack breaks (a secret placeholder is not judged: see ``parse_stack_config``)."""
    try:
        service_environments(cfg)
        found = []
    except ConfigError as exc:
        found = [exc]
    found += [error for key, res in (("connectorGateway.resources", cfg.connector_gateway.resources),
                                    ("provisioner.resources", cfg.provisioner.resources),
                                    ("ragflow.resources", cfg.ragflow.resources))
             for error in _resource_errors(key, res)]
    rag = cfg.ragflow
    if rag.enabled and rag.platforms is None and not rag.registry_preflight:
        found.append(ConfigError("ragflow.platforms", MISSING, "list the image's platforms (e.g. [linux/amd64]) "
                                                                "or set ragflow.registryPreflight: true"))
    return found + _prod_errors(cfg) + _digest_errors(cfg)


# Operator secrets a service parses, with the service's own rule: checked whenever the program sees their value.
SECRET_RULES: dict[str, Callable[[str], str | None]] = {"provisionerDatabaseUrl": database_url_problem}


# ---------------------------------------------------------------------------------------------------------
# Parsing


def _secret_errors(raw: Mapping[str, Any], secrets: Mapping[str, Any]) -> list[ConfigError]:
    found = []
    for key in SECRET_KEYS:
        if key in raw:
            found.append(ConfigError(key, REDACTED, "is a secret: set it with `pulumi config set --secret`, "
                                                    "never as plain text"))
        elif key not in secrets or secrets[key] is None:
            found.append(ConfigError(key, MISSING, "secret is missing: set it with "
                                                   f"`pulumi config set --secret {key} <value>`"))
    found += [ConfigError(key, REDACTED, f"unknown secret (declared: {', '.join(SECRET_KEYS)})")
              for key in sorted(set(secrets) - set(SECRET_KEYS))]
    for key, rule in SECRET_RULES.items():  # the value is there under Pulumi; offline it is a placeholder
        value = secrets.get(key)
        if isinstance(value, str) and value != REDACTED and (problem := rule(value)):
            found.append(ConfigError(key, REDACTED, problem))
    return found


_PATH_KEY = re.compile(r"[.\[]")


def _path_key_errors(raw: Mapping[str, Any]) -> list[ConfigError]:
    """``pulumi config set cmp-platform:ragflow.tag v1`` without ``--path`` writes the key ``ragflow.tag`` as it
    is, which nothing reads: name the command that sets the value inside ``ragflow``."""
    return [ConfigError(key, value, f"a key with a path is set with `pulumi config set --path '{PROJECT}:{key}' "
                                    f"<value>`, which writes it inside {PROJECT}:{_PATH_KEY.split(key)[0]}")
            for key, value in raw.items() if _PATH_KEY.search(key)]


def parse_stack_config(raw: Mapping[str, Any], secrets: Mapping[str, Any], *,
                       secret_placeholders: bool = False) -> StackConfig:
    """Validate a stack's config without Pulumi: ``raw`` holds bare keys (``namespace``, ``ragflow``, ...)
    with structured values already decoded; ``secrets`` maps every key of ``SECRET_KEYS`` to its value.
    ``secret_placeholders``: "[secret]" stands for a value set with ``--secret`` that nobody may judge (a key
    ``stack_config_from_bag`` refuses, redacted): it counts as set and meets no stack or service rule. Raises every
    problem at once (``ConfigErrors``, or the one ``ConfigError``)."""
    raw = {k.removeprefix(f"{PROJECT}:"): v for k, v in raw.items()}
    found = _secret_errors(raw, secrets) + _path_key_errors(raw)
    # A plain secret and a key with a path are reported above.
    plain = {k: v for k, v in raw.items() if k not in SECRET_KEYS and not _PATH_KEY.search(k)}
    try:
        cfg = StackConfig.model_validate({**plain, "secrets": {k: Secret(v) for k, v in secrets.items()}},
                                         context={"secret_placeholders": secret_placeholders})
    except ValidationError as exc:
        raise_all(found + errors_from(exc, raw))
        raise  # not reached: a ValidationError holds at least one error
    raise_all(found + stack_rule_errors(cfg))
    return cfg


def _structured_keys() -> set[str]:
    """Stack keys whose value is an object (``cmp-platform:ragflow``): Pulumi hands those over as JSON text."""
    return {field.alias or name for name, field in StackConfig.model_fields.items()
            if name != "secrets" and isinstance(field.annotation, type) and issubclass(field.annotation, Model)}


# ---------------------------------------------------------------------------------------------------------
# Provider config: other namespaces reach their providers untouched. The keys the program relies on are
# checked here; the rest of a provider's namespace, and namespaces nobody here knows, are left alone.

_BOOL_TEXT = ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")  # Go ParseBool


def _bool_text(value: str) -> str:
    if value not in _BOOL_TEXT:
        raise ValueError("must be true or false")
    return value


PROVIDER_KEYS: dict[str, Callable[[str], str]] = {
    "vault:address": http_url,  # components/vault/client.py reads it before cmp-platform:vault.address
    "vault:skipTlsVerify": _bool_text,
    "kubernetes:upsertExistingObjects": _bool_text,  # the Argo CD adoption step (README)
    "kubernetes:enableServerSideApply": _bool_text,
    "kubernetes:namespace": dns_label,
}
PROVIDER_SECRET_KEYS = ("vault:token",)


class ProviderConfigError(ConfigError):
    """A key's problem named as written (``vault:address``, not ``cmp-platform:...``): provider keys, and
    keys whose namespace is the problem."""

    def __init__(self, key: str, value: Any, rule: str):
        super().__init__(key, value, rule)
        self.args = (str(self).replace(self.key, key, 1),)
        self.key = key


def provider_config_errors(bag: Mapping[str, str], secret_keys: Collection[str]) -> list[ConfigError]:
    """The provider keys the program knows, as the engine will hand them to their providers."""
    found: list[ConfigError] = [
        ProviderConfigError(key, REDACTED, f"is a secret: set it with `pulumi config set --secret {key} <value>`, "
                                           "never as plain text")
        for key in PROVIDER_SECRET_KEYS if key in bag and key not in secret_keys]
    for key, rule in PROVIDER_KEYS.items():
        if key in bag and key not in secret_keys:
            try:
                rule(bag[key])
            except ValueError as exc:
                found.append(ProviderConfigError(key, bag[key], str(exc)))
    return found


def check_provider_config(bag: Mapping[str, str], secret_keys: Collection[str]) -> None:
    raise_all(provider_config_errors(bag, secret_keys))


# Namespaces a stack file may use: the project's, and those of the providers the program creates resources
# with (plus the CLI's own `pulumi:`). Anything else reaches nobody: most likely a misspelling.
PROVIDER_NAMESPACES = ("kubernetes", "vault", "docker-build", "pulumi")


def namespace_warnings(keys: Iterable[str], source: Callable[[str], str] | None = None) -> list[str]:
    """One warning per key whose namespace is neither the project's nor a provider's the program uses, naming
    the closest known one (a misspelled ``cmp-platfrom:`` would otherwise be ignored and the defaults deploy)."""
    known = (PROJECT, *PROVIDER_NAMESPACES)
    warnings = []
    for key in keys:
        namespace = key.split(":", 1)[0]
        if ":" not in key or namespace in known:
            continue
        closest = difflib.get_close_matches(namespace, known, n=1, cutoff=0.5)
        hint = f"did you mean {closest[0]!r}?" if closest else f"known: {', '.join(known)}"
        where = f"{source(key)}: " if source else ""
        warnings.append(f"config warning: {where}{key}: namespace {namespace!r} is neither the project's nor a "
                        f"provider's this program uses, so nothing reads it; {hint}")
    return warnings


def unnamespaced_key_error(key: str, value: Any) -> ConfigError:
    """A stack-file key without ``<namespace>:``, which Pulumi's own reader refuses."""
    return ProviderConfigError(key, value, f"a stack file key needs a namespace, as Pulumi reads it: "
                                           f"`{PROJECT}:{key}` for this project's, `<provider>:{key}` for a provider's")


def _top_key(key: str) -> str:
    """``cmp-platform:gatewayBilling.retries`` -> ``cmp-platform:gatewayBilling`` (the key a file sets)."""
    return _PATH_KEY.split(key, maxsplit=1)[0]


def _located(errors: list[ConfigError], source: Callable[[str], str] | None) -> list[ConfigError]:
    """Each error's line names the file that sets (or should set) its key."""
    if source is not None:
        for error in errors:
            error.args = (f"{error} ({source(_top_key(error.key))})",)
    return errors


def _bag_values(bag: Mapping[str, str], secret_keys: Collection[str]) -> tuple[dict, dict, list[ConfigError]]:
    """The project's keys of the bag: (plain values, structured ones decoded; secrets; decoding errors)."""
    prefix = f"{PROJECT}:"
    structured = _structured_keys()
    raw: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    found: list[ConfigError] = []
    for full_key, text in bag.items():
        if not full_key.startswith(prefix):
            continue  # other namespaces (vault:, kubernetes:) belong to their providers
        key = full_key.removeprefix(prefix)
        if key in SECRET_KEYS and full_key in secret_keys:
            secrets[key] = text
        elif key in structured:
            try:
                raw[key] = json.loads(text)
            except (TypeError, json.JSONDecodeError):
                found.append(ConfigError(key, text, "must be a YAML object (structured config)"))
        else:
            raw[key] = text  # a plain secret key stays in raw: parse_stack_config refuses it
    return raw, secrets, found


# Keys that decide which rules and objects a stack gets rather than what an object holds.
_DECIDING_KEYS = ("environment", "kubernetesVersion", "protect", "requireImageDigest")


def _stack_keys() -> set[str]:
    return {field.alias or name for name, field in StackConfig.model_fields.items() if name != "secrets"}


def secret_key_error(key: str) -> ConfigError:
    """A stack key set with ``--secret`` that is not a declared secret: nothing the program makes of it could stay
    secret (docs/platform.md, "Secrets"), so it is refused rather than published."""
    why = ("decides which rules and objects the stack gets, which every preview must read" if key in _DECIDING_KEYS
           else "renders it into Kubernetes objects that are not Secrets (ConfigMaps, Deployments), which the "
                "cluster and the GitOps export show in plain text")
    command = (f"pulumi config set --path '{PROJECT}:{key}.<field>' <value>" if key in _structured_keys()
               else f"pulumi config set {PROJECT}:{key} <value>")
    return ConfigError(key, REDACTED, (
        f"is set with --secret, but the program keeps secret only the declared secrets ({', '.join(SECRET_KEYS)}) "
        f"and {why}. Set its values again without --secret (`{command}`); a secret belongs in Vault, from where "
        "a service's ExternalSecret brings its secret settings"))


def _secret_stack_values(raw: dict[str, Any], secret_keys: Collection[str]) -> tuple[set[str], list[ConfigError]]:
    """Redact in ``raw`` every project key set with ``--secret`` (beyond the declared secrets, which are not in
    ``raw``): its value is never judged nor shown, under Pulumi (which hands it over decrypted) as offline (where it
    holds placeholders). A known stack key is refused; an unknown one is left to the unknown-key error."""
    secret = {key for key in raw if f"{PROJECT}:{key}" in secret_keys}
    for key in secret:
        raw[key] = redacted(raw[key])
    refused = secret & _stack_keys()
    return refused, [secret_key_error(key) for key in sorted(refused)]


def stack_config_from_bag(bag: Mapping[str, str], secret_keys: Collection[str], *,
                          source: Callable[[str], str] | None = None,
                          earlier: Iterable[ConfigError] = ()) -> StackConfig:
    """Validate a stack's config as the language host hands it over: ``bag`` maps full keys
    (``cmp-platform:namespace``, ``vault:address``) to their text (structured values as JSON),
    ``secret_keys`` names the keys set with ``--secret``. The program and the offline preview both
    read config through here. Every problem is raised at once (``earlier`` ones, e.g. the stack file's,
    first), each line naming the file ``source(full key)`` says sets the key."""
    found = [*earlier, *provider_config_errors(bag, secret_keys)]
    raw, secrets, decoding = _bag_values(bag, secret_keys)
    found += decoding
    refused, refusals = _secret_stack_values(raw, secret_keys)
    found += refusals
    try:
        cfg = parse_stack_config(raw, secrets, secret_placeholders=bool(refused))
    except ConfigError as exc:
        # A refused key's placeholders are not judged; every other key is.
        found += [error for error in getattr(exc, "errors", [exc])
                  if _top_key(error.key).removeprefix(f"{PROJECT}:") not in refused]
        cfg = None
    raise_all(_located(found, source))
    assert cfg is not None
    return cfg


def load_stack_config() -> StackConfig:
    """Read and validate the running stack's config; secrets stay secret Outputs.

    The language host hands the program its config as the ``PULUMI_CONFIG`` environment bag
    (``pulumi.runtime.get_config_env``, public API), the secret keys through ``is_config_secret``; that bag
    is the only public way to list the keys that are set, which the unknown-key check needs. An error names
    the stack file; a namespace nothing reads is a warning in the engine's log.
    """
    import pulumi
    from pulumi.runtime import get_config_env, is_config_secret

    bag = get_config_env()
    stack_file = f"Pulumi.{pulumi.get_stack()}.yaml"
    for warning in namespace_warnings(bag, lambda _key: stack_file):
        pulumi.log.warn(warning)
    return stack_config_from_bag(bag, {key for key in bag if is_config_secret(key)},
                                 source=lambda _key: stack_file)
