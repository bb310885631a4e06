"""Provisioner fixtures: a real PostgreSQL, a local Saleor JWKS server, running provisioner apps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.services.provisioner.helpers import (
    SERVICE_JWT_SECRET,
    JwksServer,
    RunningProvisioner,
    SigningKey,
    make_settings,
    running_provisioner,
    serving_jwks,
)
from tests.support.postgres import PostgresServer
from tests.support.tiers import server_fixture


@server_fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 cluster for the session; each test gets its own database from ``pg_url``."""
    with PostgresServer(fsync=False) as server:  # durability across a crash is not what these tests test
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """An empty database for the test (the same one each time, emptied)."""
    return postgres.empty_database("inbox")


@pytest.fixture(scope="session")
def saleor_key() -> SigningKey:
    return SigningKey("saleor-key-1")


@pytest.fixture(scope="session")
def foreign_key() -> SigningKey:
    """A key Saleor's JWKS does not publish (an attacker's), under the same kid."""
    return SigningKey("saleor-key-1")


@server_fixture
def jwks_server(saleor_key: SigningKey) -> Iterator[JwksServer]:
    with serving_jwks([saleor_key]) as server:
        yield server


@server_fixture(scope="session")
def saleor(saleor_key: SigningKey) -> Iterator[JwksServer]:
    """Saleor's JWKS for the tests that do not change it; a test that does takes ``jwks_server``."""
    with serving_jwks([saleor_key]) as server:
        yield server


@pytest.fixture
def provisioner_factory(pg_url: str, control_plane, saleor: JwksServer) -> Iterator[Callable[..., RunningProvisioner]]:
    """Start provisioners on the test's database against the control-plane fake, trusting ``saleor`` (or the
    ``saleor=`` given); all stop after the test."""
    control_plane.add_issuer("cmp-provisioner", SERVICE_JWT_SECRET)
    stack = []

    def start(*, saleor: JwksServer = saleor, tracing=None, **overrides: Any) -> RunningProvisioner:
        overrides.setdefault("database_url", pg_url)
        overrides.setdefault("saleor_allowed_origins", saleor.origin)
        settings = make_settings(control_plane_url=control_plane.url, **overrides)
        manager = running_provisioner(settings, saleor, tracing)
        stack.append(manager)
        return manager.__enter__()

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)
