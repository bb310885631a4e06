"""The tier rule on this session's own collection: a test is in the server tier when it carries the ``server``
marker, which a server fixture (``server_fixture``) and the markers e2e/images/registry give it."""

from __future__ import annotations

import pytest

from tests.support.tiers import IMPLYING_SERVER, SERVER_FIXTURES, server_fixture, server_reason


@server_fixture(name="example_server_fixture")
def _declared_under_another_name():
    yield "not started: this fixture only shows how a name is declared"


def test_a_server_fixture_is_declared_by_its_pytest_name():
    assert "example_server_fixture" in SERVER_FIXTURES
    assert "_declared_under_another_name" not in SERVER_FIXTURES


def test_every_collected_test_using_a_server_fixture_or_an_implying_marker_carries_the_server_marker(request):
    checked = 0
    for item in request.session.items:
        if server_reason(item) is not None:
            checked += 1
            assert item.get_closest_marker("server"), f"{item.nodeid}: {server_reason(item)}, but no server marker"
        if any(item.get_closest_marker(m) for m in IMPLYING_SERVER):
            assert item.get_closest_marker("server"), item.nodeid
    if len(request.session.items) > 100 and "not server" not in (request.config.option.markexpr or ""):
        assert checked, "a whole-suite collection with no server test: the check saw nothing"


def test_the_fast_tier_holds_no_server_test(request):
    if "not server" not in (request.config.option.markexpr or ""):
        pytest.skip("only a fast-tier run (-m 'not server') says what the fast tier holds")
    assert [item.nodeid for item in request.session.items if server_reason(item)] == []


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
