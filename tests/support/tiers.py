"""The two test tiers, by pytest marker (docs/ci.md, "The two tiers").

A test is in the **server** tier when it carries the marker ``server``: it needs something that listens or
outlives the call starting it (a real server, a loopback fake, a provider-host or analyzer process, an image
build). ``make test-fast`` runs the others (``-m "not server"``). The marker comes from one of three places:

- the test says so: ``@pytest.mark.server`` (or ``pytestmark = pytest.mark.server`` for a whole file);
- the markers ``e2e``, ``images`` and ``registry`` each imply it;
- a fixture that starts a server is declared with ``@server_fixture`` instead of ``@pytest.fixture``, and every
  test that uses it, directly or through other fixtures, gets the marker when it is collected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

SERVER_MARKER = "server"
IMPLYING_SERVER = ("e2e", "images", "registry")
# The names of the fixtures declared with server_fixture, filled as pytest imports conftests and test modules.
SERVER_FIXTURES: set[str] = set()


def server_fixture(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``pytest.fixture`` (same options) for a fixture that starts a server: its tests are in the server tier."""
    def declare(fixture_function: Callable[..., Any]) -> Any:
        SERVER_FIXTURES.add(options.get("name") or fixture_function.__name__)
        return pytest.fixture(**options)(fixture_function)

    return declare(function) if function is not None else declare


def server_reason(item: pytest.Item) -> str | None:
    """None for the fast tier; else what puts the test in the server tier."""
    for marker in (SERVER_MARKER, *IMPLYING_SERVER):
        if item.get_closest_marker(marker) is not None:
            return f"marker {marker}"
    fixtures = sorted(SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    return f"fixture {', '.join(fixtures)}" if fixtures else None
