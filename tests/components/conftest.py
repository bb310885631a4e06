"""Fixtures of the component tests: a real Debian docker-registry on loopback (Ragflow's preflight)."""

from __future__ import annotations

import pytest

from tests.components.registry import PushableRegistry
from tests.support.tiers import server_fixture
from tools.images.registry import registry_binary


@server_fixture(scope="module")
def docker_registry():
    """docker-registry serving a temp dir on a free 127.0.0.1 port; tests push their own images."""
    if registry_binary() is None:
        pytest.skip("docker-registry is absent: install Debian's docker-registry (.ci/system-deps.sh)")
    registry = PushableRegistry().start()
    try:
        yield registry
    finally:
        registry.stop()
