"""The config base every piece's model builds on: one error type, the model base, shared validators.

Keys are camelCase in Pulumi.<stack>.yaml (``cmp-platform:gatewayBilling.retries``) and snake_case in
Python. Any invalid or missing key becomes one ``ConfigError`` line naming the key, the value and the rule,
so the program stops before registering anything. The models themselves live with their components
(``components/<piece>/config.py``); ``stacks/config.py`` composes them into one stack config.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from infra.naming import NAME_LABEL, PROJECT

REDACTED = "[secret]"


class ConfigError(ValueError):
    """One readable line: ``cmp-platform:<key> = <value>: <rule>``."""

    def __init__(self, key: str, value: Any, rule: str):
        self.key = f"{PROJECT}:{key}" if not key.startswith(f"{PROJECT}:") else key
        self.value = value
        self.rule = " ".join(str(rule).split())
        super().__init__(f"config error: {self.key} = {_show(value)}: {self.rule}")


_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@\s:]*:)[^/@\s]*@", re.I)


def _show(value: Any) -> str:
    """The value as the error line shows it: JSON-ish, one line, at most 120 characters, and a password in
    a URL (``redis://user:pw@host``) replaced, since the line reaches logs and CI output."""
    if value is MISSING:
        return "<unset>"
    if value == REDACTED:
        return REDACTED
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    text = " ".join(text.split())
    return text if len(text) <= 120 else text[:117] + "..."


MISSING = object()  # a key that is not set at all


def holds_placeholder(value: Any) -> bool:
    """Whether ``value`` holds the secret placeholder: is it, is text made with it (a URL with a secret namespace),
    or a list or mapping holding one. Such a value cannot be judged."""
    if isinstance(value, Mapping):
        return any(holds_placeholder(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(holds_placeholder(item) for item in value)
    return isinstance(value, str) and REDACTED in value


def redacted(value: Any) -> Any:
    """``value`` with every leaf the secret placeholder, its shape kept (a null stays null)."""
    if isinstance(value, Mapping):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item) for item in value]
    return value if value is None else REDACTED

# ---------------------------------------------------------------------------------------------------------
# Building blocks

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_URL = re.compile(r"^https?://[^\s/:]+(?P<port>:\d{1,5})?(/\S*)?$")
# [host[:port]/]path[:tag][@sha256:digest]; tag and digest parsed separately below.
_IMAGE = re.compile(
    r"^(?P<name>(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


# `pulumi config set --path a.b 1` writes the integer 1; a text field takes it as the text "1" (a quantity,
# a tag, a rotation trigger), as Kubernetes and the services do. A boolean is never text.
MODEL_CONFIG = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                          coerce_numbers_to_str=True)


class Model(BaseModel):
    """camelCase keys in YAML, snake_case in python; unknown keys are errors (typos do not pass silently);
    numbers where text is expected are their text (``cpu: 1`` is the quantity "1")."""

    model_config = MODEL_CONFIG

    # Set from the validation context: this model was read where "[secret]" stands for a value nobody may judge.
    _secret_placeholders: bool = PrivateAttr(default=False)

    def model_post_init(self, context: Any) -> None:
        if (context or {}).get("secret_placeholders"):
            self._hold_placeholders()

    def _hold_placeholders(self) -> None:
        """Mark this model and the models in it (defaults too, which validation gives no context) as read with
        secret placeholders."""
        self._secret_placeholders = True
        for name in type(self).model_fields:
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Model) and not item._secret_placeholders:
                    item._hold_placeholders()

    @property
    def secret_placeholders(self) -> bool:
        """Whether a "[secret]" in this model stands for a secret value (see ``_secret_placeholder``)."""
        return self._secret_placeholders

    @field_validator("*", mode="wrap")
    @classmethod
    def _secret_placeholder(cls, value: Any, handler: Any, info: Any) -> Any:
        """A secret value nobody may judge is the placeholder "[secret]" (offline its ciphertext cannot be
        decrypted; stacks/config.py redacts a key it refuses): with ``context={"secret_placeholders": True}`` a
        field holding it, or a list or mapping whose only errors are its placeholders, counts as set and is not
        judged. Without that context every value meets every rule."""
        try:
            return handler(value)
        except ValidationError as exc:
            if (info.context or {}).get("secret_placeholders") and (
                    value == REDACTED or all(_placeholder_error(error) for error in exc.errors())):
                return value
            raise

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A model's own field validators are applied after the ones it inherits; the placeholder rule above must
        see their errors too, so it moves last (outermost) in any model that adds field validators."""
        super().__pydantic_init_subclass__(**kwargs)
        validators = cls.__pydantic_decorators__.field_validators
        if list(validators)[-1:] != ["_secret_placeholder"]:
            validators["_secret_placeholder"] = validators.pop("_secret_placeholder")
            cls.model_rebuild(force=True)


def _placeholder_error(error: Any) -> bool:
    """A pydantic error a placeholder caused (a key that is missing or unknown is an error whatever it holds)."""
    return error["type"] not in ("missing", "extra_forbidden") and holds_placeholder(error.get("input"))


def dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters")
    return value


def http_url(value: str) -> str:
    match = _URL.match(value)
    if not match:
        raise ValueError("must be an http:// or https:// URL")
    if match["port"] and not 1 <= int(match["port"][1:]) <= 65535:
        raise ValueError(f"port {match['port'][1:]} must be between 1 and 65535")
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


def peer(namespace: str | None, name: str | None, *ports: int) -> Peer:
    """Pods named ``name`` (by their name label) in ``namespace`` (None: the workload's own), on ``ports``."""
    return Peer(namespace=namespace, pod_labels={NAME_LABEL: name} if name else {},
                ports=list(ports))

_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_tag(value: str) -> str:
    """An image tag as registries accept it."""
    if not _TAG.match(value):
        raise ValueError("must be an image tag ([A-Za-z0-9_.-], at most 128 characters)")
    return value


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


# ---------------------------------------------------------------------------------------------------------
# pydantic errors as ConfigError lines


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
            value = value.get(part, value.get(to_camel(str(part)), MISSING))
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


class ConfigErrors(ConfigError):
    """Every config error of one run, one line each (the first one's key, value and rule as its own)."""

    def __init__(self, errors: list[ConfigError]):
        first = errors[0]
        super().__init__(first.key, first.value, first.rule)
        self.errors = list(errors)
        self.args = ("\n".join(str(e) for e in self.errors),)


def raise_all(errors: list[ConfigError]) -> None:
    """Nothing for no errors, the one error, or all of them together."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)


def errors_from(exc: ValidationError, raw: Mapping[str, Any]) -> list[ConfigError]:
    """Every pydantic error of validating ``raw``, each as one ConfigError line naming its key."""
    return [_one_error(error, raw) for error in exc.errors()]


def error_from(exc: ValidationError, raw: Mapping[str, Any]) -> ConfigError:
    """The first pydantic error of validating ``raw`` as one ConfigError line naming its key."""
    return _one_error(exc.errors()[0], raw)


def _one_error(error: Any, raw: Mapping[str, Any]) -> ConfigError:
    loc = tuple(error["loc"])
    value = _value_at(raw, loc) if loc else raw
    if error["type"] == "missing":
        return ConfigError(_key_of(loc), MISSING, "required key is missing")
    rule = error["msg"].removeprefix("Value error, ")
    if not loc:
        return ConfigError("", "<stack>", rule)
    if error["type"] == "extra_forbidden":
        rule = "unknown key (docs/platform.md lists every key)"
    return ConfigError(_key_of(loc), value, rule)
