"""The whole stack config as pydantic models, read from ``pulumi.Config("cmp-platform")``.

Keys are camelCase in Pulumi.<stack>.yaml (``cmp-platform:gatewayBilling.retries``) and snake_case here.
Any invalid or missing key becomes one ``ConfigError`` line naming the key, the value and the rule, so
the program stops before registering anything. Defaults reproduce the GitOps reference's values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.saleor.settings import SaleorTuning
from components.vault.paths import CONNECTOR_MOUNT, SECRET_MOUNT, check_rotations, operator_keys
from infra.images.settings import ImagesConfig, check_tag
from infra.naming import NAME_LABEL, PROJECT

# ---------------------------------------------------------------------------------------------------------
# Secrets: never in a stack file as plain text. saleorStaffPassword is a `secure:` value in each stack
# file; the operator keys come from the Vault path table and are set with `pulumi config set --secret`.
SALEOR_STAFF_PASSWORD = "saleorStaffPassword"
OPERATOR_SECRET_KEYS: tuple[str, ...] = tuple(key.config_key for _path, key in operator_keys() if key.config_key)
SECRET_KEYS: tuple[str, ...] = (SALEOR_STAFF_PASSWORD, *OPERATOR_SECRET_KEYS)
REDACTED = "[secret]"


class ConfigError(ValueError):
    """One readable line: ``cmp-platform:<key> = <value>: <rule>``."""

    def __init__(self, key: str, value: Any, rule: str):
        self.key = f"{PROJECT}:{key}" if not key.startswith(f"{PROJECT}:") else key
        self.value = value
        self.rule = " ".join(str(rule).split())
        super().__init__(f"config error: {self.key} = {_show(value)}: {self.rule}")


def _show(value: Any) -> str:
    if value is _MISSING:
        return "<unset>"
    if value == REDACTED:
        return REDACTED
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


_MISSING = object()

# ---------------------------------------------------------------------------------------------------------
# Building blocks

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_URL = re.compile(r"^https?://[^\s/:]+(:\d{1,5})?(/\S*)?$")
# [host[:port]/]path[:tag][@sha256:digest]; tag and digest parsed separately below.
_IMAGE = re.compile(
    r"^(?P<name>(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


class Model(BaseModel):
    """camelCase keys in YAML, snake_case in python; unknown keys are errors (typos do not pass silently)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters")
    return value


def http_url(value: str) -> str:
    if not _URL.match(value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def check_image(value: str) -> str:
    """An image reference with a tag or a digest, and not the moving tag ``latest``."""
    match = _IMAGE.match(value)
    if not match:
        raise ValueError("must be an image reference like registry/repo:tag or registry/repo@sha256:<64 hex>")
    if not match["tag"] and not match["digest"]:
        raise ValueError("must carry a tag or a @sha256 digest (an untagged image means :latest)")
    if match["tag"] == "latest":
        raise ValueError("must not use the moving tag 'latest'")
    return value


DnsLabel = Annotated[str, AfterValidator(dns_label)]
HttpUrl = Annotated[str, AfterValidator(http_url)]
ImageRef = Annotated[str, AfterValidator(check_image)]


def has_digest(image: str) -> bool:
    match = _IMAGE.match(image)
    return bool(match and match["digest"])


def cpu_millis(quantity: str) -> float:
    match = _CPU.match(quantity)
    if not match:
        raise ValueError("must be a CPU quantity like 250m or 1")
    return float(match[1]) * (1 if match[3] else 1000)


def memory_bytes(quantity: str) -> int:
    match = _MEMORY.match(quantity)
    if not match:
        raise ValueError("must be a memory quantity like 128Mi or 1Gi")
    return int(match[1]) * _MEMORY_UNITS[match[2]]


class ResourceAmounts(Model):
    cpu: str
    memory: str

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        cpu_millis(value)
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        memory_bytes(value)
        return value


class Resources(Model):
    """Requests and limits; both are required by the policy pack (limits >= requests: a stack rule)."""

    requests: ResourceAmounts
    limits: ResourceAmounts

    def manifest(self) -> dict[str, dict[str, str]]:
        return {"requests": self.requests.model_dump(), "limits": self.limits.model_dump()}


def resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> Resources:
    return Resources(requests=ResourceAmounts(cpu=cpu_request, memory=memory_request),
                     limits=ResourceAmounts(cpu=cpu_limit, memory=memory_limit))


class Peer(Model):
    """Pods a NetworkPolicy rule allows: a namespace (default: the workload's own) and optional pod labels."""

    namespace: DnsLabel | None = None
    pod_labels: dict[str, str] = Field(default_factory=dict)
    ports: list[int] = Field(default_factory=list)  # empty on ingress: the workload's port

    @field_validator("pod_labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if not _LABEL_VALUE.match(label):
                raise ValueError(f"label value {label!r} is not a valid Kubernetes label value")
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} must be between 1 and 65535")
        return value


def _peer(namespace: str | None, name: str | None, *ports: int) -> Peer:
    return Peer(namespace=namespace, pod_labels={NAME_LABEL: name} if name else {},
                ports=list(ports))


class WorkloadSettings(Model):
    """What every ServiceWorkload has: image, size, debug mode."""

    image: ImageRef
    replicas: int = Field(default=2, ge=1, le=50)
    debug: bool = False
    resources: Resources = Field(default_factory=lambda: resources("100m", "128Mi", "500m", "256Mi"))


class ServiceSettings(WorkloadSettings):
    """What both platform services share: their callers, the control plane they call, the request body limit."""

    ingress_from: list[Peer] = Field(default_factory=list)  # each service names its callers
    control_plane_egress: Peer = Field(default_factory=lambda: _peer(None, "cmp-control-plane", 8000))
    external_https: bool = True  # SaaS APIs (gateway), the JWKS of a Saleor outside the cluster (provisioner)
    cp_timeout_seconds: float = Field(default=5, gt=0)
    max_body_bytes: int = Field(gt=0)  # each service sets its default


class ConnectorGatewayConfig(ServiceSettings):
    """Reference section 1 plus the gateway's environment contract (DESIGN: environment variables)."""

    image: ImageRef = "ghcr.io/gsvdev/cmp-connector-gateway:0.1.0"
    ingress_from: list[Peer] = Field(default_factory=lambda: [
        _peer(None, "cmp-runtime"), _peer(None, "cmp-runner")])
    vault_egress: Peer = Field(default_factory=lambda: _peer("vault", "vault", 8200))
    vault_auth_method: Literal["kubernetes", "token"] = "kubernetes"
    vault_k8s_role: str = "cmp-connector"
    vault_timeout_seconds: float = Field(default=2, gt=0)
    credential_cache_ttl_seconds: int = Field(default=30, ge=0)
    policy_enforcement: bool = True
    policy_cache_grace_seconds: int = Field(default=300, ge=0)
    connector_timeout_seconds: float = Field(default=10, gt=0)
    connector_max_retries: int = Field(default=2, ge=0, le=10)
    rate_limit_requests_per_minute: int = Field(default=600, gt=0)
    max_body_bytes: int = Field(default=65536, gt=0)
    zendesk_base_url: str = "https://{subdomain}.zendesk.com"
    slack_base_url: HttpUrl = "https://slack.com/api"
    hubspot_base_url: HttpUrl = "https://api.hubapi.com"
    audit_log: str = "stdout"

    @field_validator("zendesk_base_url")
    @classmethod
    def _zendesk(cls, value: str) -> str:
        http_url(value.replace("{subdomain}", "x"))
        if "{subdomain}" not in value:
            raise ValueError("must contain the placeholder {subdomain}")
        return value


class ProvisionerConfig(ServiceSettings):
    """Reference section 3 plus the provisioner's environment contract."""

    image: ImageRef = "ghcr.io/gsvdev/cmp-provisioner:0.1.0"
    ingress_from: list[Peer] = Field(default_factory=lambda: [_peer("saleor", None)])
    database_egress: Peer = Field(default_factory=lambda: _peer(None, "postgresql", 5432))
    saleor_egress: Peer = Field(default_factory=lambda: _peer("saleor", None, 8000))
    saleor_allowed_origins: list[str] = Field(default_factory=list)  # empty: the origin of saleor.apiUrl
    saleor_legacy_hmac: bool = False
    jwks_cache_ttl_seconds: int = Field(default=300, gt=0)
    jwks_min_refetch_seconds: int = Field(default=30, ge=0)
    retry_max_attempts: int = Field(default=8, ge=1, le=50)
    retry_backoff_seconds: float = Field(default=1, gt=0)
    retry_backoff_max_seconds: float = Field(default=300, gt=0)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_batch_size: int = Field(default=20, ge=1, le=1000)
    max_body_bytes: int = Field(default=262144, gt=0)

    @field_validator("saleor_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"origin {origin!r} must be scheme://host[:port] without a path")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> ProvisionerConfig:
        if self.retry_backoff_max_seconds < self.retry_backoff_seconds:
            raise ValueError("retryBackoffMaxSeconds must be >= retryBackoffSeconds")
        return self


class GatewayBillingConfig(Model):
    """Reference section 4: the cmp-gateway ConfigMap's billing, entitlements and rate-limit keys."""

    deployment_name: DnsLabel = "cmp-gateway"
    config_map_name: DnsLabel = "cmp-gateway"
    container_name: DnsLabel = "cmp-gateway"
    billing_enabled: bool = True
    authorize_path: str = "/billing/authorize"
    settle_path: str = "/billing/settle"
    retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=1, gt=0)
    timeout_seconds: float = Field(default=5, gt=0)
    entitlements_cache_ttl_seconds: int = Field(default=60, gt=0)
    entitlements_path: str = "/instances/{id}/entitlements"
    rate_limit_enabled: bool = True
    rate_limit_requests_per_minute: int = Field(default=60, gt=0)

    @field_validator("authorize_path", "settle_path", "entitlements_path")
    @classmethod
    def _paths(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("entitlements_path")
    @classmethod
    def _entitlements(cls, value: str) -> str:
        if "{id}" not in value:
            raise ValueError("must contain the placeholder {id}")
        return value


NodeArch = Literal["amd64", "arm64", "arm", "ppc64le", "s390x", "riscv64"]


class RagflowConfig(Model):
    """Reference section 2: a multi-arch tag pinned to a node architecture, preflighted before deploy."""

    enabled: bool = True
    namespace: DnsLabel = "rag"
    name: DnsLabel = "ragflow"  # the policy pack waives root and pins the arch by this name
    image: str = "infiniflow/ragflow"
    tag: str = "v0.15.1"
    digest: str | None = None
    node_arch: NodeArch = "amd64"
    # The image's platforms (os/arch[/variant]) as the operator checked them; or ask the registry.
    platforms: list[str] | None = None
    registry_preflight: bool = False
    registry_url: HttpUrl | None = None  # default: derived from the image (Docker Hub for bare names)
    replicas: int = Field(default=1, ge=1, le=10)
    resources: Resources = Field(default_factory=lambda: resources("1", "4Gi", "4", "8Gi"))
    http_port: int = Field(default=80, ge=1, le=65535)
    api_port: int = Field(default=9380, ge=1, le=65535)
    # None: every pod of the stack's namespace (where the runtime and runner call it from).
    ingress_from: list[Peer] | None = None

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        check_tag(value)
        if value == "latest":
            raise ValueError("must not use the moving tag 'latest'")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not DIGEST.match(value):
            raise ValueError("must be sha256:<64 lower-case hex>")
        return value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str] | None) -> list[str] | None:
        for platform in value or []:
            if not re.match(r"^[a-z0-9]+/[a-z0-9]+(/[a-z0-9]+)?$", platform):
                raise ValueError(f"platform {platform!r} must be os/arch[/variant], e.g. linux/amd64")
        return value

    @property
    def image_ref(self) -> str:
        ref = f"{self.image}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


class VaultConfig(Model):
    address: HttpUrl = "http://vault.vault.svc.cluster.local:8200"
    secret_mount: str = SECRET_MOUNT
    kv_mount: str = CONNECTOR_MOUNT
    adopt_mounts: bool = False
    delete_on_destroy: bool = False
    kubernetes_auth_path: str = "kubernetes"
    kubernetes_host: HttpUrl = "https://kubernetes.default.svc"
    # Seed provider: Vault client timeout, and per-key rotation triggers ("cmp/connector.service_jwt_secret":
    # "2026-11"); changing a trigger writes a new value for that key only.
    timeout_seconds: float = Field(default=5, gt=0)
    rotations: dict[str, str] = Field(default_factory=dict)
    # The ESO controller's ServiceAccount, bound by the Vault role the ClusterSecretStore uses.
    external_secrets_namespace: str = "external-secrets"
    external_secrets_service_account: str = "external-secrets"

    @field_validator("secret_mount", "kv_mount", "kubernetes_auth_path")
    @classmethod
    def _mounts(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", value):
            raise ValueError("must be one Vault mount path segment of [a-z0-9_-]")
        return value

    @field_validator("rotations")
    @classmethod
    def _rotations(cls, value: dict[str, str]) -> dict[str, str]:
        return check_rotations(value)

    @field_validator("external_secrets_namespace", "external_secrets_service_account")
    @classmethod
    def _eso_names(cls, value: str) -> str:
        return dns_label(value)


class SaleorConfig(Model):
    api_url: HttpUrl
    staff_email: str
    tuning: SaleorTuning = Field(default_factory=SaleorTuning)  # the Saleor provider's retry/timeout bounds

    @field_validator("staff_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError("must be an e-mail address")
        return value

    @property
    def origin(self) -> str:
        match = re.match(r"^(https?://[^/]+)", self.api_url)
        assert match  # api_url is validated
        return match[1]


Environment = Literal["dev", "staging", "prod"]
KUBERNETES_VERSIONS = (25, 37)  # the schema versions kubernetes-validate ships


class Secret:
    """A secret config value: a pulumi Output under Pulumi, a plain string in offline checks; never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: Any):
        self._value = value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def output(self) -> Any:
        """The value as a secret ``pulumi.Output`` (import deferred: offline validation needs no Pulumi)."""
        import pulumi

        return pulumi.Output.secret(self._value)


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
        raise ConfigError("ragflow.platforms", _MISSING,
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
            raise ConfigError("ragflow.digest", _MISSING,
                              f"{cfg.environment} requires the Ragflow image pinned by a sha256 digest")


# ---------------------------------------------------------------------------------------------------------
# Parsing


def _key_of(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("." if key else "") + (to_camel(part) if "_" in str(part) else str(part))
    return key


def _value_at(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> Any:
    value: Any = raw
    for part in loc:
        if isinstance(value, Mapping):
            value = value.get(part, value.get(to_camel(str(part)), _MISSING))
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _error_from(exc: ValidationError, raw: Mapping[str, Any]) -> ConfigError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    value = _value_at(raw, loc) if loc else raw
    if first["type"] == "missing":
        return ConfigError(_key_of(loc), _MISSING, "required key is missing")
    rule = first["msg"].removeprefix("Value error, ")
    if not loc:
        return ConfigError("", "<stack>", rule)
    if first["type"] == "extra_forbidden":
        rule = "unknown key (check the spelling against infra/config.py)"
    return ConfigError(_key_of(loc), value, rule)


def parse_stack_config(raw: Mapping[str, Any], secrets: Mapping[str, Any]) -> StackConfig:
    """Validate a stack's config without Pulumi: ``raw`` holds bare keys (``namespace``, ``ragflow``, ...)
    with structured values already decoded; ``secrets`` maps every key of ``SECRET_KEYS`` to its value."""
    raw = {k.removeprefix(f"{PROJECT}:"): v for k, v in raw.items()}
    for key in SECRET_KEYS:
        if key in raw:
            raise ConfigError(key, REDACTED, "is a secret: set it with `pulumi config set --secret`, "
                                             "never as plain text")
        if key not in secrets or secrets[key] is None:
            raise ConfigError(key, _MISSING, "secret is missing: set it with "
                                             f"`pulumi config set --secret {key} <value>`")
    unknown = sorted(set(secrets) - set(SECRET_KEYS))
    if unknown:
        raise ConfigError(unknown[0], REDACTED, f"unknown secret (declared: {', '.join(SECRET_KEYS)})")
    try:
        cfg = StackConfig.model_validate({**raw, "secrets": {k: Secret(v) for k, v in secrets.items()}})
    except ValidationError as exc:
        raise _error_from(exc, raw) from None
    _check_stack_rules(cfg)
    return cfg


_STRUCTURED = {
    field.alias or name
    for name, field in StackConfig.model_fields.items()
    if name != "secrets" and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}


def load_stack_config() -> StackConfig:
    """Read and validate ``cmp-platform:*`` from the running stack; secrets stay secret Outputs."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    config = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    all_config: dict[str, Any] = dict(runtime_config.get_config_env())
    all_config.update(runtime_config.CONFIG.get())
    for full_key, value in all_config.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key.removeprefix(prefix)
        if key in SECRET_KEYS:
            if not runtime_config.is_config_secret(full_key):
                raise ConfigError(key, REDACTED, "must be set with `pulumi config set --secret` (a secure: value)")
            continue
        if key in _STRUCTURED:
            try:
                raw[key] = json.loads(value) if isinstance(value, str) else value
            except json.JSONDecodeError:
                raise ConfigError(key, value, "must be a YAML object (structured config)") from None
        else:
            raw[key] = value
    secrets = {key: config.get_secret(key) for key in SECRET_KEYS
               if runtime_config.get_config(f"{prefix}{key}") is not None}
    return parse_stack_config(raw, secrets)
