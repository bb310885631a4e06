"""Fixtures of the component tests: a real Debian docker-registry on loopback (Ragflow's preflight)."""

from __future__ import annotations

import os

import pytest

from tests.components.registry import REGISTRY_BINARY, LocalRegistry


@pytest.fixture(scope="module")
def docker_registry():
    """docker-registry serving a temp dir on a free 127.0.0.1 port; tests push their own images."""
    if not os.access(REGISTRY_BINARY, os.X_OK):
        pytest.skip(f"{REGISTRY_BINARY} is absent: install Debian's docker-registry (.ci/system-deps.sh)")
    registry = LocalRegistry().start()
    try:
        yield registry
    finally:
        registry.stop()
