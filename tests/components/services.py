"""Shared by the two services' component tests: resource types and one render at the reference values."""

from __future__ import annotations

import functools

from tests.components.helpers import base_config, run_platform

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"


@functools.cache
def reference_render():
    """One render at the reference's values, shared by the read-only tests."""
    return run_platform(staging_like())


def staging_like(**overrides):
    """The dev stack file at the reference's base values (2 replicas, no debug)."""
    config = base_config(**overrides)
    for key in ("connectorGateway", "provisioner"):
        config[key] = {k: v for k, v in config[key].items() if k not in ("replicas", "debug")}
    return config


