"""What the preview accepts, the services accept: no stack config passes that makes a pod refuse to start.

Each service's ``check-config`` (exit 0 or one line per bad variable) runs on the environment a stack renders
(``main()`` of its console script, in this process on exactly that environment; one run of the console script
itself shows it refusing a bad one): its ConfigMap's data plus a value for every key its ExternalSecret pulls from
Vault (as the seed provider generates it, or as an operator sets it). Then, property-based, on configs
generated within every rendered key's range as the program's models declare it, and at both sides of each
bound: the program and the service draw the line at the same place. The ranges stay written once per side
(components/<piece>/config.py and service_src/<service>/settings.py); this test keeps them equal.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from unittest import mock

import annotated_types
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from components.connector_gateway.component import ConnectorGatewayArgs, connector_env
from components.connector_gateway.config import ConnectorGatewayConfig
from components.provisioner.component import ProvisionerArgs, provisioner_env
from components.provisioner.config import ProvisionerConfig
from components.vault.kv import generate_value
from components.vault.paths import CONNECTOR, PROVISIONER, KeySource, SeedPath
from infra.config import ConfigError
from infra.recording import encode_config
from service_src.connector_gateway import cli as gateway_cli
from service_src.connector_gateway.settings import GatewaySettings
from service_src.provisioner import cli as provisioner_cli
from service_src.provisioner.settings import ProvisionerSettings
from stacks.config import SECRET_KEYS, StackConfig, stack_config_from_bag
from stacks.platform import service_args
from tools.preview.runner import PROJECT_ROOT, preview_stack
from tools.preview.stack_files import known_stacks, load_stack_files

# What an operator sets for an operator-supplied Vault key (docs/vault.md shows the same shape).
OPERATOR_VALUES = {"provisionerDatabaseUrl": "postgresql+psycopg://cmp:operator-set@postgresql:5432/cmp"}
# Bounds only the program draws, each with its reason; every other rendered bound must equal the service's.
PROGRAM_ONLY_BOUNDS = {
    ("cmp-provisioner", "retry_max_attempts"): "the program caps retries at 50 (a dead letter after ~4 h)",
}


@dataclass(frozen=True)
class Service:
    name: str  # the workload: its ConfigMap is <name>-config, its ExternalSecret <name>-secrets
    console_script: str
    cli: Callable[[list[str]], int]
    model: type[Any]  # the program's slice (components/<piece>/config.py)
    settings: type[Any]  # the service's own (service_src/<service>/settings.py)
    slice_key: str
    secret_path: SeedPath
    render: Callable[[StackConfig], dict[str, str]]


def _gateway_env(cfg: StackConfig) -> dict[str, str]:
    return connector_env(ConnectorGatewayArgs(**service_args(cfg, None), settings=cfg.connector_gateway,
                                              vault=cfg.vault))


def _provisioner_env(cfg: StackConfig) -> dict[str, str]:
    return provisioner_env(ProvisionerArgs(**service_args(cfg, None), settings=cfg.provisioner,
                                           saleor_origin=cfg.saleor.origin))


SERVICES = (
    Service("cmp-connector", "cmp-connector-gateway", gateway_cli.main, ConnectorGatewayConfig, GatewaySettings,
            "connectorGateway", CONNECTOR, _gateway_env),
    Service("cmp-provisioner", "cmp-provisioner", provisioner_cli.main, ProvisionerConfig, ProvisionerSettings,
            "provisioner", PROVISIONER, _provisioner_env),
)
STACKS = known_stacks(PROJECT_ROOT)


def secret_env(path: SeedPath, keys: list[str]) -> dict[str, str]:
    """A value for each ExternalSecret key (its env name), as it will be in Vault."""
    by_env = {key.env_name: key for key in path.keys}
    out = {}
    for env_name in keys:
        key = by_env[env_name]
        out[env_name] = (generate_value() if key.source is KeySource.GENERATED
                         else key.value if key.source is KeySource.FIXED else OPERATOR_VALUES[key.config_key])
    return out


def check_config_in_process(service: Service, env: dict[str, str]) -> list[str]:
    """The service's ``check-config`` on exactly ``env``: [] when it would start, else its lines."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = service.cli(["check-config"])
    return [] if code == 0 else (err.getvalue() + out.getvalue()).splitlines() or [f"exit {code}"]


# --- the environment every stack renders ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict[str, dict[str, str]]]:
    """stack -> workload -> the environment its pod gets (ConfigMap data + ExternalSecret keys)."""
    out = tmp_path_factory.mktemp("preview")
    envs: dict[str, dict[str, dict[str, str]]] = {}
    for stack in STACKS:
        result = preview_stack(stack, out_root=out)
        assert result.code == 0 and result.recording is not None, result.lines
        objects = {(r.type.rsplit(":", 1)[-1], r.name): r.inputs for r in result.recording.resources if r.custom}
        envs[stack] = {}
        for service in SERVICES:
            config_map = objects[("ConfigMap", f"{service.name}-config")]["data"]
            external = objects[("ExternalSecret", f"{service.name}-secrets")]["spec"]["data"]
            envs[stack][service.name] = {**config_map, **secret_env(service.secret_path,
                                                                     [d["secretKey"] for d in external])}
    return envs


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.console_script)
def test_each_service_accepts_the_environment_each_stack_renders(rendered, stack, service, tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **rendered[stack][service.name]}
    refused = check_config_in_process(service, env)
    assert refused == [], f"{service.console_script} refuses the {stack} stack:\n" + "\n".join(refused)


def test_check_config_fails_on_what_a_service_refuses(rendered, tmp_path):
    """The check above can fail: below the gateway's body-size floor the console script says so, in one line."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **rendered["dev"]["cmp-connector"],
           "MAX_BODY_BYTES": "100"}
    proc = subprocess.run([str(Path(sys.executable).parent / "cmp-connector-gateway"), "check-config"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and len(proc.stderr.splitlines()) == 1 and "MAX_BODY_BYTES" in proc.stderr


def test_the_rendering_used_below_is_the_preview_s(rendered):
    """The property tests render env with the components' own functions; they give the preview's ConfigMaps."""
    cfg = dev_config()
    for service in SERVICES:
        expected = {k: v for k, v in rendered["dev"][service.name].items()
                    if k not in {key.env_name for key in service.secret_path.keys}}
        assert service.render(cfg) == expected


# --- property-based: generated configs within each rendered key's range --------------------------------------


def _dev_files() -> tuple[dict[str, Any], set[str], str]:
    files = load_stack_files(PROJECT_ROOT, "dev", SECRET_KEYS)
    return files.values, files.secret_keys, files.project


DEV_VALUES, DEV_SECRET_KEYS, PROJECT = _dev_files()


def dev_config(**slices: dict[str, Any]) -> StackConfig:
    """The dev stack with service slices overlaid, read the way the program reads it (ConfigError if refused)."""
    values = dict(DEV_VALUES)
    for key, overlay in slices.items():
        values[key] = {**(values.get(key) or {}), **overlay}
    bag = encode_config(values, PROJECT)
    return stack_config_from_bag(bag, set(encode_config(dict.fromkeys(DEV_SECRET_KEYS, ""), PROJECT)))


def bounds(field: Any) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive) from a pydantic field's annotated_types metadata."""
    low = high = None
    low_open = high_open = False
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
    return low, low_open, high, high_open


def rendered_fields(service: Service) -> list[str]:
    """The program's fields that reach the service as an environment variable of the same name."""
    env = service.render(dev_config())
    return [name for name in service.model.model_fields if name.upper() in env]


def numeric_fields(service: Service) -> list[str]:
    return [name for name in rendered_fields(service)
            if service.model.model_fields[name].annotation in (int, float)]


def in_range(field: Any) -> st.SearchStrategy[Any]:
    """Values the program's model accepts for one field, as its metadata declares them."""
    if field.annotation is bool:
        return st.booleans()
    low, low_open, high, high_open = bounds(field)
    if field.annotation is int:
        low_i = None if low is None else int(low) + (1 if low_open else 0)
        high_i = None if high is None else int(high) - (1 if high_open else 0)
        return st.integers(min_value=low_i, max_value=high_i if high_i is not None else (low_i or 0) + 10**7)
    return st.floats(min_value=low, max_value=high if high is not None else 1e7, exclude_min=low_open,
                     exclude_max=high_open, allow_nan=False, allow_infinity=False)


def around_bounds(service: Service, name: str) -> st.SearchStrategy[Any]:
    """Values on both sides of each bound the program or the service declares, and a wide spread."""
    points: set[float] = {0}
    for model in (service.model, service.settings):
        low, _, high, _ = bounds(model.model_fields[name])
        points |= {p for b in (low, high) if b is not None for p in (b - 1, b, b + 1)}
    if service.model.model_fields[name].annotation is int:
        return st.one_of(st.sampled_from(sorted(int(p) for p in points)), st.integers(-10, 10**7))
    return st.one_of(st.sampled_from(sorted(float(p) for p in points)),
                     st.sampled_from([min(points) - 0.5, 1e-9, 0.5]),
                     st.floats(-10, 1e7, allow_nan=False, allow_infinity=False))


ORIGINS = st.builds(lambda scheme, host, port: f"{scheme}://{host}" + (f":{port}" if port is not None else ""),
                    st.sampled_from(["http", "https"]),
                    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
                    st.one_of(st.none(), st.integers(1, 65535)))


def whole_slice(service: Service) -> st.SearchStrategy[dict[str, Any]]:
    """A service slice with any of its rendered keys set within range (modes: any of their values)."""
    fields = service.model.model_fields
    optional: dict[str, st.SearchStrategy[Any]] = {
        fields[name].alias or name: in_range(fields[name]) for name in numeric_fields(service)}
    optional |= {fields[name].alias or name: st.booleans() for name in rendered_fields(service)
                 if fields[name].annotation is bool}
    optional |= {fields[name].alias or name: st.sampled_from(get_args(fields[name].annotation))
                 for name in rendered_fields(service) if get_origin(fields[name].annotation) is Literal}
    if "saleor_allowed_origins" in fields:
        optional["saleorAllowedOrigins"] = st.lists(ORIGINS, min_size=1, max_size=3)
    return st.fixed_dictionaries({}, optional=optional)


def _camel(service: Service, name: str) -> str:
    return service.model.model_fields[name].alias or name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.console_script)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_config_the_program_accepts_is_one_the_service_starts_with(service, data):
    overlay = data.draw(whole_slice(service), label=service.slice_key)
    try:
        cfg = dev_config(**{service.slice_key: overlay})
    except ConfigError:
        reject()  # the program refuses it: the preview would stop here
    env = {**service.render(cfg), **secret_env(service.secret_path,
                                               [k.env_name for k in service.secret_path.keys])}
    assert check_config_in_process(service, env) == []


@pytest.mark.parametrize(("service", "name"), [(s, n) for s in SERVICES for n in numeric_fields(s)],
                         ids=lambda v: v.console_script if isinstance(v, Service) else v)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_program_and_service_draw_each_bound_at_the_same_place(service, name, data):
    value = data.draw(around_bounds(service, name), label=name)
    if service.model.model_fields[name].annotation is int:
        value = int(value)
    try:
        cfg = dev_config(**{service.slice_key: {_camel(service, name): value}})
    except ConfigError:
        program_accepts, env = False, None
    else:
        program_accepts, env = True, service.render(cfg)
    if env is None:  # render the value as the component would, to ask the service about it
        env = {**service.render(dev_config()), name.upper(): str(value)}
    env |= secret_env(service.secret_path, [k.env_name for k in service.secret_path.keys])
    service_accepts = check_config_in_process(service, env) == []
    if (service.name, name) in PROGRAM_ONLY_BOUNDS:
        assert service_accepts or not program_accepts, f"{name}={value!r}: the preview accepts, the service refuses"
    else:
        assert program_accepts == service_accepts, (
            f"{name}={value!r}: program {'accepts' if program_accepts else 'refuses'}, "
            f"service {'accepts' if service_accepts else 'refuses'}")
