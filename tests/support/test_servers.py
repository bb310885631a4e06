"""What the suite's conftest does around the tiers and the servers, seen from a pytest run of a small test file.

Each case runs pytest in a child process with the suite's conftest loaded as a plugin (``-p tests.conftest``),
as `make test` / `make test-fast` would, and reads its output.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    server: needs a server\n")
    test_file = tmp_path / "test_example.py"
    test_file.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", str(tmp_path / "pytest.ini"),
         "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "base"), "-q", "-p", "no:cacheprovider",
         *args, str(test_file)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.server
def test_a_failing_test_names_the_real_server_it_used_and_its_log(tmp_path):
    result = _pytest(tmp_path, """
        import httpx, pytest
        from tests.support.openbao import OpenBaoServer

        @pytest.fixture(scope="session")
        def vault():
            with OpenBaoServer() as server:
                yield server

        def test_reads_a_missing_secret(vault):
            response = httpx.get(f"{vault.addr}/v1/secret/data/nope", headers=vault.headers())
            assert response.status_code == 200

        def test_health(vault):
            assert httpx.get(f"{vault.addr}/v1/sys/health").status_code == 200
    """)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    assert result.stdout.count("servers used") == 1, "only the failing test's report names its servers"
    section = result.stdout.split("servers used", 1)[1]
    found = re.search(r"OpenBao at (http://127\.0\.0\.1:\d+), log (\S+)", section)
    assert found, result.stdout
    log = Path(found.group(2))
    assert log.is_relative_to(tmp_path / "base"), "the log is kept in pytest's temporary directory"
    assert "core: vault is unsealed" in log.read_text(), "the log outlives the stopped server"


def test_the_fast_tier_leaves_out_server_tests_and_fails_one_that_starts_a_server_unmarked(tmp_path):
    result = _pytest(tmp_path, """
        import pytest
        from tests.support.net import run_uvicorn_in_thread
        from tests.support.tiers import server_fixture

        async def app(scope, receive, send):
            pass

        @server_fixture
        def fake():
            with run_uvicorn_in_thread(app) as url:
                yield url

        def test_pure():
            assert sum([1, 2]) == 3

        def test_through_a_server_fixture(fake):
            pass

        @pytest.mark.server
        def test_marked_by_hand():
            pass

        def test_serves_without_saying_so():
            with run_uvicorn_in_thread(app):
                pass
    """, "-m", "not server", "-rA")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 2 deselected" in result.stdout
    assert re.search(r"PASSED \S*test_example.py::test_pure", result.stdout)
    assert re.search(r"FAILED \S*test_example.py::test_serves_without_saying_so", result.stdout)
    assert re.search(r"test_serves_without_saying_so started uvicorn serving function \(in-process\) at "
                     r"http://127\.0\.0\.1:\d+ but is not in the server tier: mark it @pytest.mark.server, or "
                     r"declare the fixture that starts it with @server_fixture", result.stdout), result.stdout
