"""Helpers for component and stack tests: stack-file config, running the program, manifest checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra.recording import Recording, run_main
from stacks.config import SECRET_KEYS
from tools.preview.validation import validate_object

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "placeholder-secret-value"
K8S_VERSION = "1.33.0"


def stack_file(stack: str) -> dict[str, Any]:
    """The ``config:`` of Pulumi.<stack>.yaml with bare keys; secure values stay ``{"secure": ...}``."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {k.removeprefix("cmp-platform:"): v for k, v in data["config"].items()}


def engine_config(config: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Config for run_program: secure values and absent declared secrets become marked placeholders."""
    out: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            out[key] = PLACEHOLDER
            secret_keys.add(key)
        else:
            out[key] = value
    for key in SECRET_KEYS:
        if key not in out:
            out[key] = PLACEHOLDER
            secret_keys.add(key)
    return out, secret_keys


def base_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack file with top-level overrides (deep copies, so tests can edit freely)."""
    config = copy.deepcopy(stack_file("dev"))
    config.update(copy.deepcopy(overrides))
    return config


def run_platform(config: dict[str, Any], stack: str = "dev") -> Recording:
    """The real program (the project's __main__.py, run as Pulumi runs it) under the recording engine."""
    values, secret_keys = engine_config(config)
    return run_main(ROOT, stack=stack, config=values, secret_keys=secret_keys)


def run_stack(stack: str) -> Recording:
    return run_platform(stack_file(stack), stack=stack)


def manifest(resource: Any) -> dict[str, Any]:
    """A recorded Kubernetes resource's inputs as a manifest."""
    return dict(resource.inputs)


def validate_k8s(obj: dict[str, Any]) -> None:
    """Strict check against the upstream OpenAPI schema (unknown fields rejected)."""
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def validate_crd(obj: dict[str, Any]) -> None:
    """Strict check of an ESO object against the served schema of its CRD (from the schema directory); the
    test is skipped, saying so, when no schema directory is configured."""
    from infra.schemas import crd_schemas, not_configured, schema_dir

    if schema_dir() is None:
        pytest.skip(not_configured(f"{obj.get('kind')} ({obj.get('apiVersion')})"))
    assert (obj.get("apiVersion"), obj.get("kind")) in crd_schemas(), "no CRD for this kind in the schema directory"
    violation = validate_object(obj, K8S_VERSION)
    assert violation is None, str(violation)
