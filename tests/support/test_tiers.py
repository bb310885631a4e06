"""The tier rule: a test is in the server tier when what it runs reaches a server, wherever its file lives.

The functions and classes below are examples the classifier reads (they are never called).
"""

from __future__ import annotations

import http.server
import shutil
import subprocess

import pytest

from tests.support.tiers import Classifier

SERVER_FIXTURES = ("openbao", "postgres", "control_plane", "docker_registry", "built_image", "registry")


class _RedisLike:
    """A server class the way a new helper would write one."""

    def start(self):
        self.process = subprocess.Popen(["redis-server", "--port", "0"])


def _redis_fixture():
    server = _RedisLike()
    server.start()
    return server


def _through_two_helpers():
    return _redis_fixture()


def _serves_http():
    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)


def _runs_the_binary():
    subprocess.run(["redis-server", "--test-memory", "1"], check=False)


def _looks_up_nginx():
    return shutil.which("nginx")


def _runs_a_cli_and_returns():
    return subprocess.run(["git", "--version"], capture_output=True, check=False)


def _imports_its_server_inside():
    from tests.support.postgres import PostgresServer

    return PostgresServer(port=1)


@pytest.mark.parametrize("image", ["nginx", "redis-server"])
def _names_servers_only_as_data(image):
    return {"image": image, "argv": "nginx -g 'daemon off;'"}


@pytest.mark.parametrize(("example", "reason"), [
    (_RedisLike, "Popen"),
    (_redis_fixture, "_RedisLike -> Popen"),
    (_through_two_helpers, "_redis_fixture -> _RedisLike -> Popen"),
    (_serves_http, "ThreadingHTTPServer"),
    (_runs_the_binary, "['redis-server', '--test-memory', '1']"),
    (_looks_up_nginx, "shutil.which('nginx')"),
    (_imports_its_server_inside, "PostgresServer -> _binary('initdb')"),
])
def test_what_reaches_a_server_is_found_with_the_chain_that_gets_there(example, reason):
    assert Classifier().reason(example) == reason


@pytest.mark.parametrize("example", [_runs_a_cli_and_returns, _names_servers_only_as_data, len])
def test_a_short_command_data_and_library_code_are_not_servers(example):
    assert Classifier().reason(example) is None


def test_every_collected_test_using_a_server_fixture_is_in_the_server_tier(request):
    """Checked on this session's own collection (the fast tier's collection must hold none of them)."""
    tier = request.config.getoption("--tier")
    checked = 0
    for item in request.session.items:
        used = set(getattr(item, "fixturenames", ())) & set(SERVER_FIXTURES)
        if used:
            checked += 1
            assert tier != "fast", f"{item.nodeid} uses {used} but was kept in the fast tier"
            assert item.get_closest_marker("server"), f"{item.nodeid} uses {used} but is not in the server tier"
        if any(item.get_closest_marker(m) for m in ("e2e", "images", "registry")):
            assert item.get_closest_marker("server"), item.nodeid
    if tier != "fast" and len(request.session.items) > 100:
        assert checked, "a whole-suite collection with no test of a server fixture: the check saw nothing"


def test_this_sessions_files_run_longest_work_first(request):
    """Image builds, then end-to-end, then other server tests, then the rest: whole files, in that order."""
    def rank(item):
        return next((r for r, m in enumerate(("images", "e2e", "server")) if item.get_closest_marker(m)), 3)

    file_ranks: dict[str, int] = {}
    for item in request.session.items:
        path = item.nodeid.split("::", 1)[0]
        file_ranks[path] = min(file_ranks.get(path, 3), rank(item))
    order = [file_ranks[item.nodeid.split("::", 1)[0]] for item in request.session.items]
    assert order == sorted(order)
