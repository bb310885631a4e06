"""What the preview accepts, the services accept, by construction: each service's settings model defines its stack
slice and renders its environment (components/workload/config.py), so these tests check the construction.

- every stack's rendered environment (ConfigMap + the ExternalSecret's keys, with values as Vault will hold
  them) passes the service's ``check-config``;
- a value a service refuses is refused by the preview, naming the stack key, with the service's own rule;
- every settable field reaches the pod as its variable and reads back as the value the stack set;
- secrets are never in a ConfigMap, and every secret setting comes from the ExternalSecret.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from components.connector_gateway.config import ConnectorGatewayConfig
from components.provisioner.config import ProvisionerConfig
from components.vault.kv import generate_value
from components.vault.paths import CONNECTOR, PROVISIONER, KeySource, SeedPath
from components.workload.config import PLATFORM, SECRET, STACK, ServiceEnvironment, marked
from infra.config import ConfigError
from service_src.connector_gateway import cli as gateway_cli
from service_src.connector_gateway.settings import GatewaySettings
from service_src.provisioner import cli as provisioner_cli
from service_src.provisioner.settings import ProvisionerSettings
from stacks.config import SECRET_KEYS, StackConfig, parse_stack_config, service_environments
from tests.components.helpers import run_stack, stack_file

# What an operator sets for an operator-supplied Vault key (docs/vault.md shows the same shape).
OPERATOR_VALUES = {"provisionerDatabaseUrl": "postgresql+psycopg://cmp:operator-set@postgresql:5432/cmp"}
SECRETS = {key: OPERATOR_VALUES.get(key, f"value-of-{key}") for key in SECRET_KEYS}


@dataclass(frozen=True)
class Service:
    name: str  # the workload: its ConfigMap is <name>-config, its ExternalSecret <name>-secrets
    cli: Callable[[list[str]], int]
    settings: type[Any]  # the service's own model (service_src/<service>/settings.py)
    slice_model: type[Any]  # the stack slice derived from it
    secret_path: SeedPath

    @property
    def key(self) -> str:
        return self.slice_model.STACK_KEY

    def environment(self, cfg: StackConfig) -> ServiceEnvironment:
        """The environment the stack config renders for this service (what the preview checks it with)."""
        return service_environments(cfg)[self.key]


GATEWAY = Service("cmp-connector", gateway_cli.main, GatewaySettings, ConnectorGatewayConfig, CONNECTOR)
PROVISIONER_SERVICE = Service("cmp-provisioner", provisioner_cli.main, ProvisionerSettings, ProvisionerConfig,
                              PROVISIONER)
SERVICES = (GATEWAY, PROVISIONER_SERVICE)
STACKS = ("dev", "staging", "prod")


def dev_config(**slices: dict[str, Any]) -> StackConfig:
    """The dev stack file with slices overlaid, through the program's own parser (ConfigError if refused)."""
    raw = copy.deepcopy(stack_file("dev"))
    for key, overlay in slices.items():
        raw[key] = {**raw.get(key, {}), **overlay}
    return parse_stack_config(raw, SECRETS)


def secret_env(service: Service, keys: list[str]) -> dict[str, str]:
    """A value for each ExternalSecret key (its env name), as it will be in Vault."""
    out = {}
    for key in service.secret_path.keys:
        if key.env_name in keys:
            made = key.source in (KeySource.GENERATED, KeySource.PROGRAM)  # program: the Saleor app token
            out[key.env_name] = (generate_value() if made else key.value
                                 if key.source is KeySource.FIXED else OPERATOR_VALUES[key.config_key])
    return out


def pod_env(service: Service, env: ServiceEnvironment) -> dict[str, str]:
    return {**env.config_map, **secret_env(service, [name.upper() for name in env.secret_keys])}


def check_config(service: Service, env: dict[str, str]) -> list[str]:
    """The service's ``check-config`` on exactly ``env``, in this process: [] when it would start, else its lines."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, {"PATH": os.environ.get("PATH", ""), **env}, clear=True), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = service.cli(["check-config"])
    return [] if code == 0 else (err.getvalue() + out.getvalue()).splitlines() or [f"exit {code}"]


# --- the environment every stack renders ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_service_starts_with_the_environment_its_stack_renders(stack):
    """The preview's ConfigMap and ExternalSecret are the environment the settings model renders, and the
    service's check-config accepts them (with secrets as Vault will hold them)."""
    objects = {(r.type.rsplit(":", 1)[-1], r.name): r.inputs for r in run_stack(stack).resources if r.custom}
    cfg = parse_stack_config(stack_file(stack), SECRETS)
    for service in SERVICES:
        config_map = objects[("ConfigMap", f"{service.name}-config")]["data"]
        secret_keys = [d["secretKey"] for d in objects[("ExternalSecret", f"{service.name}-secrets")]["spec"]["data"]]
        rendered = service.environment(cfg)
        assert (config_map, secret_keys) == (rendered.config_map, [k.upper() for k in rendered.secret_keys])
        assert check_config(service, pod_env(service, rendered)) == [], f"{service.name} refuses the {stack} stack"


# --- what a service refuses, the preview refuses with the service's rule -------------------------------------

REFUSED = [
    (GATEWAY, "max_body_bytes", 100),
    (GATEWAY, "connector_max_retries", 11),
    (GATEWAY, "jwks_cache_ttl_seconds", 0),
    (GATEWAY, "caller_auth_mode", "none"),
    (GATEWAY, "caller_jwks_url", "https://cp.example.com/jwks?x=1"),
    (GATEWAY, "mcp_allowed_origins", ["https://a.example.com/app"]),
    (GATEWAY, "rate_limit_storage_url", "memcached://m:11211"),
    (GATEWAY, "otel_exporter_otlp_endpoint", "otel-collector:4318"),
    (GATEWAY, "zendesk_base_url", "https://zendesk.example.com"),
    (GATEWAY, "slack_base_url", "http://"),
    (GATEWAY, "vault_auth_method", "token"),
    (PROVISIONER_SERVICE, "otel_exporter_otlp_endpoint", "otel-collector:4318"),
    (PROVISIONER_SERVICE, "retry_max_attempts", 51),
    (PROVISIONER_SERVICE, "worker_batch_size", 0),
    (PROVISIONER_SERVICE, "jwks_min_refetch_seconds", -1),
    (PROVISIONER_SERVICE, "saleor_allowed_origins", ["saleor.example.com"]),
    (PROVISIONER_SERVICE, "saleor_allowed_origins", []),
    (PROVISIONER_SERVICE, "saleor_legacy_hmac", False),
    (PROVISIONER_SERVICE, "retry_backoff_max_seconds", 0.5),  # below retryBackoffSeconds (1)
]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize(("service", "name", "value"), REFUSED,
                         ids=[f"{s.key}.{_camel(n)}={v!r}" for s, n, v in REFUSED])
def test_a_value_the_service_refuses_is_refused_by_the_preview_with_its_rule(service, name, value):
    good = pod_env(service, service.environment(dev_config()))
    text = ",".join(value) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else str(value)
    refused = check_config(service, {**good, name.upper(): text})
    assert len(refused) == 1, refused  # the service's own line for this variable
    with pytest.raises(ConfigError) as caught:
        dev_config(**{service.key: {_camel(name): value}})
    error = caught.value
    assert error.key == f"cmp-platform:{service.key}.{_camel(name)}"
    assert error.rule in refused[0], (error.rule, refused[0])


# --- every settable field reaches the pod --------------------------------------------------------------------

# A valid value other than the default for each stack field, as a stack file would set it.
SET = {
    GATEWAY: {
        "cp_timeout_seconds": 2.5, "max_body_bytes": 4096, "max_result_bytes": 2048, "vault_auth_method": "kubernetes",
        "vault_k8s_role": "gw", "vault_timeout_seconds": 3, "credential_cache_ttl_seconds": 0,
        "policy_enforcement": False, "policy_cache_grace_seconds": 60, "connector_timeout_seconds": 4,
        "connector_max_retries": 0, "rate_limit_requests_per_minute": 5,
        "zendesk_base_url": "https://{subdomain}.zd.example.com", "slack_base_url": "https://slack.example.com/api",
        "hubspot_base_url": "https://hubspot.example.com", "audit_log": "/tmp/audit.log",
        "caller_auth_mode": "jwks", "caller_audience": "aud", "mcp_resource_url": "https://gw.example.com/mcp",
        "mcp_allowed_origins": ["https://a.example.com", "https://b.example.com"],
        "caller_jwks_url": "https://cp.example.com/jwks", "caller_issuer": "https://cp.example.com",
        "jwks_cache_ttl_seconds": 60, "jwks_min_refetch_seconds": 0,
        "rate_limit_storage_url": "redis://redis.redis.svc:6379/1", "rate_limit_storage_failure": "closed",
        "rate_limit_storage_timeout_seconds": 2,
        "otel_exporter_otlp_endpoint": "http://otel-collector.observability.svc:4318",
    },
    PROVISIONER_SERVICE: {
        "cp_timeout_seconds": 2.5, "max_body_bytes": 2048, "saleor_allowed_origins": ["https://shop.example.com"],
        "jwks_cache_ttl_seconds": 60.5, "jwks_min_refetch_seconds": 0, "retry_max_attempts": 50,
        "retry_backoff_seconds": 2, "retry_backoff_max_seconds": 2, "worker_poll_seconds": 0.1,
        "worker_batch_size": 1000, "catchup_interval_seconds": 30, "catchup_overlap_seconds": 0,
        "catchup_first_lookback_seconds": 3600,
        "otel_exporter_otlp_endpoint": "http://otel-collector.observability.svc:4318",
    },
}
# Stack fields never rendered, each with its reason.
NEVER_RENDERED = {"saleor_legacy_hmac": "refused whenever set"}
EGRESS = {"rateLimitStorageEgress": {"namespace": "redis", "ports": [6379]},
          "otlpEgress": {"namespace": "observability", "ports": [4318]}}


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.key)
def test_every_settable_field_reaches_the_pod_as_set(service):
    settable = {name for name in marked(service.settings, STACK) if name not in NEVER_RENDERED}
    assert set(SET[service]) == settable  # a new stack field gets a value here
    overlay = {_camel(name): value for name, value in SET[service].items()}
    egress = EGRESS if service is GATEWAY else {"otlpEgress": EGRESS["otlpEgress"]}
    env = service.environment(dev_config(**{service.key: {**overlay, **egress}}))
    expected = {name.upper() for name in (*settable, *marked(service.settings, PLATFORM))}
    assert set(env.config_map) == expected
    assert check_config(service, pod_env(service, env)) == []
    with mock.patch.dict(os.environ, pod_env(service, env), clear=True):
        read_back = service.settings()  # the service reads its environment as the pod will
    for name, value in SET[service].items():
        assert getattr(read_back, name) == value, name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.key)
def test_each_stack_key_has_the_service_s_type_and_default(service):
    for name, field in marked(service.settings, STACK).items():
        derived = service.slice_model.model_fields[name]
        assert derived.alias == _camel(name)
        assert (derived.annotation, derived.metadata) == (field.annotation, field.metadata), name
        assert derived.get_default(call_default_factory=True) == field.get_default(call_default_factory=True), name
    not_settable = set(service.settings.model_fields) - set(marked(service.settings, STACK))
    assert not_settable.isdisjoint(service.slice_model.model_fields)


# --- secrets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.key)
def test_secrets_come_from_the_external_secret_and_never_from_the_config_map(service):
    secrets = set(marked(service.settings, SECRET))
    assert secrets  # each service has one at least: its service-token secret
    env = service.environment(dev_config())
    assert set(env.secret_keys) == secrets
    assert not {name.upper() for name in secrets} & set(env.config_map)
    values = pod_env(service, env)
    assert not {v for k, v in values.items() if k.lower() in secrets} & set(env.config_map.values())
