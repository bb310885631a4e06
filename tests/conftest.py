"""Fixtures shared across the suite: real servers on loopback, fakes only for systems outside the project."""

from __future__ import annotations

import socket

import pytest

from tests.support import servers
from tests.support.control_plane import ControlPlaneFake
from tests.support.exclusive import exclusive
from tests.support.openbao import OpenBaoServer
from tests.support.tiers import Classifier


@pytest.fixture
def schema_dir():
    """The third-party schemas (Saleor's GraphQL, operators' CRDs) through CMP_SCHEMA_DIR, which the Makefile
    sets; a test that needs them is skipped, saying so, when it is unset."""
    from infra.schemas import schema_dir as configured

    found = configured()
    if found is None:
        pytest.skip("CMP_SCHEMA_DIR is not set: no third-party schemas to check against")
    return found


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


# ---- the two tiers (docs/ci.md), and the servers a failing test used ------------------------------------------

_CLASSIFIER = Classifier()
_SERVERS_BEFORE = pytest.StashKey[int]()


class ServerInFastTierError(RuntimeError):
    """A test of the fast tier opened a listening socket: it needs a server, so it belongs in the server tier."""


def _refuse_listen(sock: socket.socket, *args: object) -> None:
    raise ServerInFastTierError(
        "this test opens a listening socket, so it needs a server and belongs in the server tier: "
        "mark it @pytest.mark.server (docs/ci.md, 'The two tiers')"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier", choices=("all", "fast", "server"), default="all",
        help="fast: only the tests that need no server and no image build (make test-fast); server: the others",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--tier") == "fast":
        socket.socket.listen = _refuse_listen


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test's tier from what it uses."""
    tier = config.getoption("--tier")
    kept, dropped = [], []
    for item in items:
        needs_server = _CLASSIFIER.why_server(item) is not None
        if needs_server and item.get_closest_marker("server") is None:
            item.add_marker(pytest.mark.server)
        wanted = tier == "all" or needs_server == (tier == "server")
        (kept if wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = _costly_files_first(kept)


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


@pytest.fixture(scope="session", autouse=True)
def _server_logs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Server logs outlive their servers, in pytest's temporary directory (it keeps the last runs)."""
    servers.LOG_DIR = tmp_path_factory.getbasetemp() / "server-logs"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_SERVERS_BEFORE] = servers.mark()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test's report names each real server it used, its address and its log file."""
    report = yield
    if report.failed:
        values = list(getattr(item, "funcargs", {}).values())
        lines = servers.report_lines(values, item.stash.get(_SERVERS_BEFORE, servers.mark()))
        if lines:
            report.sections.append(("servers used", "\n".join(lines)))
    return report
