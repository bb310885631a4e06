"""Fixtures shared across the suite: real servers on loopback, fakes only for systems outside the project."""

from __future__ import annotations

import pytest

from tests.support.control_plane import ControlPlaneFake
from tests.support.openbao import OpenBaoServer


@pytest.fixture(scope="session")
def openbao():
    """A real OpenBao dev server for the whole session (KV v2 at ``secret/`` and ``kv/``)."""
    server = OpenBaoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def control_plane():
    """A fresh control-plane fake per test; register issuers with ``add_issuer(iss, secret)``."""
    with ControlPlaneFake() as fake:
        yield fake
