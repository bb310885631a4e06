"""Fixtures shared across the suite: real servers on loopback, fakes only for systems outside the project."""

from __future__ import annotations

import logging

import pytest
import structlog

from tests.support import servers
from tests.support.control_plane import ControlPlaneFake
from tests.support.exclusive import exclusive
from tests.support.openbao import OpenBaoServer
from tests.support.tiers import SERVER_MARKER, server_fixture, server_reason


@pytest.fixture
def schema_dir():
    """The third-party schemas (Saleor's GraphQL, operators' CRDs) through CMP_SCHEMA_DIR, which the Makefile
    sets; a test that needs them is skipped, saying so, when it is unset."""
    from infra.schemas import schema_dir as configured

    found = configured()
    if found is None:
        pytest.skip("no third-party schemas to check against: CMP_SCHEMA_DIR is unset and `make schemas` has not run")
    return found


@server_fixture(scope="session")
def openbao():
    """A real OpenBao dev server for the whole session (KV v2 at ``secret/`` and ``kv/``)."""
    server = OpenBaoServer().start()
    try:
        yield server
    finally:
        server.stop()


@server_fixture
def control_plane():
    """A fresh control-plane fake per test; register issuers with ``add_issuer(iss, secret)``."""
    with ControlPlaneFake() as fake:
        yield fake


# ---- the two tiers (docs/ci.md), and the servers a failing test used ------------------------------------------

_SERVERS_BEFORE = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of the server tier carries the ``server`` marker (tests/support/tiers.py says where it comes
    from), so ``-m "not server"`` selects the fast tier; then the costly files go first."""
    for item in items:
        if item.get_closest_marker(SERVER_MARKER) is None and server_reason(item) is not None:
            item.add_marker(SERVER_MARKER)
    items[:] = _costly_files_first(items)


def _costly_files_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """Whole files in the order image builds, end-to-end, other server tests, the rest (each file's own order
    kept), so xdist (`--dist loadfile --no-loadscope-reorder`) starts the longest work first."""
    def cost(item: pytest.Item) -> int:
        for rank, marker in enumerate(("images", "e2e", "server")):
            if item.get_closest_marker(marker) is not None:
                return rank
        return 3

    file_rank: dict[str, tuple[int, int]] = {}
    for index, item in enumerate(items):
        path = item.nodeid.split("::", 1)[0]
        rank, first = file_rank.get(path, (3, index))
        file_rank[path] = (min(rank, cost(item)), first)
    return sorted(items, key=lambda item: file_rank[item.nodeid.split("::", 1)[0]])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Tests that build images run one at a time across xdist workers and other runs in this checkout: buildah
    builds of one base under build/images at once break each other. (With --dist loadfile the image tests,
    which share a file, run on one worker, whose session builds each image once.)"""
    if item.get_closest_marker("images") is None:
        return (yield)
    with exclusive("images"):
        return (yield)


@pytest.fixture(autouse=True)
def _process_logging_restored():
    """A service command run in the test process (``main([...])``) sets up the process's logging as a pod's:
    the root logger's level and its JSON handler, structlog's configuration. Each test starts from the logging
    the one before it found, so a later test's log capture does not depend on which tests ran first."""
    root = logging.getLogger()
    level, handlers, config = root.level, list(root.handlers), structlog.get_config()
    yield
    root.setLevel(level)
    for handler in [h for h in root.handlers if h not in handlers]:
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):  # the services' own handler
            root.removeHandler(handler)
    structlog.configure(**config)


@pytest.fixture(scope="session", autouse=True)
def _server_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Server logs outlive their servers, in pytest's temporary directory (it keeps the last runs)."""
    servers.LOG_DIR = tmp_path_factory.getbasetemp() / "server-logs"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_SERVERS_BEFORE] = servers.mark()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test's report names each real server it used, its address and its log file; a test that started
    one without being in the server tier fails, saying so (the fast tier must need no server)."""
    report = yield
    since = item.stash.get(_SERVERS_BEFORE, servers.mark())
    started = servers.started_since(since)
    if report.when == "call" and started and item.get_closest_marker(SERVER_MARKER) is None:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} started {started[0].line()} but is not in the server tier: mark it "
                           "@pytest.mark.server, or declare the fixture that starts it with @server_fixture "
                           "(tests/support/tiers.py)")
    if report.failed:
        values = list(getattr(item, "funcargs", {}).values())
        lines = servers.report_lines(values, since)
        if lines:
            report.sections.append(("servers used", "\n".join(lines)))
    return report
