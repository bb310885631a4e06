"""What every ServiceWorkload is configured with, and how a platform service's own settings model becomes its
stack slice and its environment.

A service's settings model (``service_src/<service>/settings.py``, pydantic-settings) is the one definition of its
environment. Each field carries a mark in ``json_schema_extra`` saying where a deployed pod's value comes from:

- ``stack``: a key of the service's stack slice (camelCase), with the field's own type, default and bounds, and
  a variable of its ConfigMap;
- ``platform``: a ConfigMap variable the component sets from the rest of the stack (every one must be given);
- ``secret``: a key of the service's Vault path, which its ExternalSecret brings in; never in the ConfigMap;
- no mark: the image's default; a stack cannot set it.

``service_slice`` builds a service's slice model from the ``stack`` fields; ``render_environment`` validates the
environment a stack gives the pod with the service's own model (its field and cross-field rules) and renders the
ConfigMap from what that model makes of it, so the preview refuses exactly what the pod would refuse.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, Field, SecretBytes, SecretStr, ValidationError, create_model
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from components.vault.paths import SeedPath
from infra.config import (
    MISSING,
    REDACTED,
    ConfigError,
    ImageRef,
    Model,
    Peer,
    Resources,
    holds_placeholder,
    peer,
    resources,
)

DEPLOY = "deploy"  # the json_schema_extra key of the mark
STACK, PLATFORM, SECRET = "stack", "platform", "secret"
WITH = "with"  # a stack field left out of the ConfigMap while the field it names has no value


class WorkloadSettings(Model):
    """What every ServiceWorkload has: image, size, debug mode."""

    image: ImageRef
    replicas: int = Field(default=2, ge=1, le=50)
    debug: bool = False
    resources: Resources = Field(default_factory=lambda: resources("100m", "128Mi", "500m", "256Mi"))


class ServiceSettings(WorkloadSettings):
    """What both platform services' slices share beside their service's own settings: callers, the control
    plane they call, outbound HTTPS."""

    STACK_KEY: ClassVar[str]  # the slice's stack key: cmp-platform:<STACK_KEY>
    SETTINGS: ClassVar[type[BaseModel]]  # the service's own settings model
    SECRET_PATH: ClassVar[SeedPath]  # the Vault path its ExternalSecret reads

    ingress_from: list[Peer] = Field(default_factory=list)  # each service names its callers
    control_plane_egress: Peer = Field(default_factory=lambda: peer(None, "cmp-control-plane", 8000))
    external_https: bool = True  # SaaS APIs (gateway), the JWKS of a Saleor outside the cluster (provisioner)
    otlp_egress: Peer | None = None  # required with otelExporterOtlpEndpoint: the trace collector

    def render(self, platform: Mapping[str, Any]) -> ServiceEnvironment:
        """The pod's environment from this slice and the values the component sets (render_environment)."""
        env = render_environment(self.SETTINGS, self, platform, self.SECRET_PATH)
        if getattr(self, "otel_exporter_otlp_endpoint", None) and self.otlp_egress is None:
            raise ConfigError(f"{self.STACK_KEY}.otlpEgress", MISSING, (
                "is required with otelExporterOtlpEndpoint: the NetworkPolicy lets the pods reach only the peers it "
                "names (e.g. {namespace: observability, podLabels: {...}, ports: [4318]})"))
        return env


@dataclass(frozen=True)
class ServicePlatform:
    """What the stack tells every service beside its slice."""

    namespace: str
    control_plane_url: str
    debug: bool = False


@dataclass(frozen=True)
class ServiceEnvironment:
    """A pod's environment: its ConfigMap's data and the Vault keys its ExternalSecret brings in."""

    config_map: dict[str, str]
    secret_keys: tuple[str, ...]


def mark_of(field: FieldInfo) -> str | None:
    extra = field.json_schema_extra
    return extra.get(DEPLOY) if isinstance(extra, dict) else None


def marked(settings: type[BaseModel], mark: str) -> dict[str, FieldInfo]:
    """The settings' fields carrying ``mark``, in declaration order."""
    return {name: field for name, field in settings.model_fields.items() if mark_of(field) == mark}


def _is_secret(annotation: Any) -> bool:
    return any(kind in (SecretStr, SecretBytes) for kind in (annotation, *get_args(annotation)))


def env_text(value: Any) -> str:
    """A value as the ConfigMap writes it and the service parses it back: 2.0 as "2", lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        return ",".join(env_text(item) for item in value)
    return str(value)


def service_slice(name: str, base: type[ServiceSettings]) -> type[ServiceSettings]:
    """The stack slice of a service: ``base`` (its workload keys) plus each ``stack`` field of its settings
    (``base.SETTINGS``) with the same type, default and bounds, so a value out of range fails with the service's
    own message."""
    settings = base.SETTINGS
    fields: dict[str, Any] = {}
    for field_name, field in marked(settings, STACK).items():
        if _is_secret(field.annotation):
            raise TypeError(f"{settings.__name__}.{field_name} is a secret: mark it secret, not stack (a stack "
                            "value lands in the ConfigMap)")
        fields[field_name] = (field.annotation, copy.deepcopy(field))
    for field_name, field in settings.model_fields.items():
        if mark_of(field) in (PLATFORM, SECRET) and field_name in base.model_fields:
            raise TypeError(f"{base.__name__}.{field_name} shadows a {mark_of(field)} setting of {settings.__name__}")
    return create_model(name, __base__=base, __module__=base.__module__, **fields)


@functools.cache
def deployed_model(settings: type[Any], unknown: frozenset[str] = frozenset()) -> type[Any]:
    """The service's own settings model reading only the values given (never this process's environment), with
    its secret fields left to the pod and the ``unknown`` ones (secret placeholders) left unjudged: every other
    rule is the service's."""

    class FromValues(settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                       file_secret_settings):
            return (init_settings,)

    unjudged: dict[str, Any] = {name: (field.annotation | None, Field(None, validate_default=False))
                                for name, field in settings.model_fields.items()
                                if mark_of(field) == SECRET or name in unknown}
    suffix = "".join(f"_{name}" for name in sorted(unknown))
    return create_model(f"{settings.__name__}AsDeployed{suffix}", __base__=FromValues, __module__=__name__,
                        **unjudged)


def render_environment(settings: type[Any], values: ServiceSettings, platform: Mapping[str, Any],
                       secret_path: SeedPath) -> ServiceEnvironment:
    """The pod's environment for a validated slice and the values the component sets (every ``platform`` field,
    and defaults for ``stack`` fields the slice leaves unset). A value the service refuses is a ConfigError
    naming the stack key, with the service's own rule."""
    stack, platform_fields = marked(settings, STACK), marked(settings, PLATFORM)
    if missing := sorted(set(platform_fields) - set(platform)):
        raise TypeError(f"{settings.__name__}: the component sets no value for {', '.join(missing)}")
    if unknown := sorted(set(platform) - set(platform_fields) - set(stack)):
        raise TypeError(f"{settings.__name__}: {', '.join(unknown)} are not stack or platform settings")
    given = {**platform, **{name: getattr(values, name) for name in stack if name in values.model_fields_set}}
    # A secret placeholder (values.secret_placeholders: a secret nobody may read here) is neither judged nor
    # made up: the ConfigMap shows it as it is; every other value meets the service's rules.
    unknown = frozenset(name for name, value in given.items()
                        if values.secret_placeholders and holds_placeholder(value))
    text = {name: env_text(value) for name, value in given.items() if value is not None and name not in unknown}
    try:
        deployed = deployed_model(settings, unknown).model_validate(text)
    except ValidationError as exc:
        raise _refused(exc, values, given, stack) from None
    config_map = {}
    for name, field in settings.model_fields.items():  # in declaration order: the ConfigMap's order
        if mark_of(field) not in (STACK, PLATFORM):
            continue
        value, companion = getattr(deployed, name), dict(field.json_schema_extra or {}).get(WITH)
        if name in unknown:
            config_map[name.upper()] = REDACTED
        elif value in (None, "", []) or (companion and companion not in unknown
                                          and getattr(deployed, companion) in (None, "", [])):
            continue
        else:
            config_map[name.upper()] = env_text(value)
    return ServiceEnvironment(config_map, _secret_keys(settings, secret_path))


def _refused(exc: ValidationError, values: ServiceSettings, given: Mapping[str, Any],
             stack: Mapping[str, FieldInfo]) -> ConfigError:
    """The service's first complaint as one line: on a stack field, its key and value; otherwise the slice and
    the variable the component set."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else ""
    rule = error["msg"].removeprefix("Value error, ")
    value = given.get(name, getattr(values, name, None))
    if name in stack:
        return ConfigError(f"{values.STACK_KEY}.{to_camel(name)}", to_jsonable_python(value), rule)
    return ConfigError(values.STACK_KEY, f"{name.upper()}={env_text(value)}", rule)


def _secret_keys(settings: type[BaseModel], path: SeedPath) -> tuple[str, ...]:
    """The Vault keys of the settings' secret fields (a key's name is the field's), in the path's order."""
    wanted = set(marked(settings, SECRET))
    if absent := sorted(wanted - {key.name for key in path.keys}):
        raise TypeError(f"{settings.__name__}: secret setting(s) {', '.join(absent)} have no key in Vault path "
                        f"{path.mount}/{path.path} (components/vault/paths.py)")
    return tuple(key.name for key in path.keys if key.name in wanted)
