"""The console script as an operator runs it: environment only, a PostgreSQL inbox, SIGTERM to stop.

The service runs as the console script in a process of its own. The one-shot commands (check-config, migrate,
dead-letters) run ``main()``, which is what the console script calls, in this process on exactly the
environment given: they read nothing but the environment and answer on stdout/stderr with an exit status.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service_src.provisioner.cli import main
from tests.services.provisioner.helpers import (
    SERVICE_JWT_SECRET,
    body_of,
    cli,
    order_payload,
    wait_until,
)
from tests.support.cli import assert_one_line_usage_error
from tests.support.net import free_port, wait_http


def test_cmp_provisioner_serves_from_env(pg_url: str, control_plane, saleor):
    control_plane.add_issuer("cmp-provisioner", SERVICE_JWT_SECRET)
    port = free_port()
    env = {
        **os.environ,
        "CONTROL_PLANE_URL": control_plane.url,
        "SERVICE_JWT_SECRET": SERVICE_JWT_SECRET,
        "SALEOR_ALLOWED_ORIGINS": saleor.origin,
        "DATABASE_URL": pg_url,
        "PORT": str(port),
        "WORKER_POLL_SECONDS": "0.1",
    }
    script = shutil.which("cmp-provisioner", path=str(Path(sys.executable).parent))
    assert script, "the console script cmp-provisioner is not installed in the venv"
    process = subprocess.Popen(
        [script, "serve", "--host", "127.0.0.1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", ok=lambda r: r.status_code == 200)
        body = body_of(order_payload("T3JkZXI6bG9jYWw"))
        response = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/order-fully-paid",
            content=body,
            headers={
                "Saleor-Event": "order_fully_paid",
                "Saleor-Signature": saleor.keys[0].sign(body),
                "Saleor-Api-Url": saleor.api_url,
            },
        )
        assert response.status_code == 200, response.text
        wait_until(lambda: control_plane.instances_for_order("T3JkZXI6bG9jYWw"), what="the instance")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught so the exit status tells why it ended.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    assert '"event": "row_done"' in output  # JSON log lines on stdout
    assert SERVICE_JWT_SECRET not in output

    listed = cli(["dead-letters", "list"], env)
    assert (listed.returncode, listed.stdout) == (0, "") and "0 dead letter(s)" in listed.stderr


def test_bad_environment_is_one_line_per_variable(tmp_path: Path):
    env = _env(SALEOR_LEGACY_HMAC="false")
    result = cli([], env)  # no command: serve
    assert result.returncode == 2
    assert "cmp-provisioner: CONTROL_PLANE_URL: Field required" in result.stderr
    assert "cmp-provisioner: SERVICE_JWT_SECRET: Field required" in result.stderr
    assert "cmp-provisioner: DATABASE_URL: Field required" in result.stderr  # no default inbox: PostgreSQL only
    assert "cmp-provisioner: SALEOR_LEGACY_HMAC is not supported: Saleor signs the webhooks with JWS" in result.stderr


def _script() -> str:
    script = shutil.which("cmp-provisioner", path=str(Path(sys.executable).parent))
    assert script, "the console script cmp-provisioner is not installed in the venv"
    return script


def _env(**values: str) -> dict[str, str]:
    """The caller's environment without any provisioner variable, plus ``values``."""
    names = ("SALEOR_", "CONTROL_PLANE", "SERVICE_JWT", "DATABASE_URL", "PORT", "LOG_LEVEL", "WORKER_", "MIGRATE")
    return {k: v for k, v in os.environ.items() if not k.startswith(names)} | values


def test_check_config_reads_what_the_service_reads():
    good = _env(
        CONTROL_PLANE_URL="http://127.0.0.1:9000",
        SERVICE_JWT_SECRET="local-secret",
        SALEOR_ALLOWED_ORIGINS="https://shop.example.com",
        DATABASE_URL="postgresql+psycopg://cmp@127.0.0.1:5432/cmp",
    )
    ok = cli(["check-config"], good)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "configuration ok\n", "")

    bad = good | {"WORKER_BATCH_SIZE": "0", "DATABASE_URL": "mysql://db/x"}
    result = cli(["check-config"], bad)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cmp-provisioner: WORKER_BATCH_SIZE: Input should be greater than or equal to 1",
        "cmp-provisioner: DATABASE_URL must be a postgresql+psycopg://... DSN, not mysql://",
    ]
    no_origins = cli(["check-config"], good | {"SALEOR_ALLOWED_ORIGINS": ""})
    assert no_origins.stderr.splitlines() == [
        "cmp-provisioner: SALEOR_ALLOWED_ORIGINS is empty: it is required (the Saleor origins whose JWS signatures "
        "are accepted, comma-separated scheme://host[:port])"
    ]
    legacy = cli(["check-config"], good | {"SALEOR_LEGACY_HMAC": "true"})
    assert (legacy.returncode, legacy.stderr.splitlines()) == (2, [
        "cmp-provisioner: SALEOR_LEGACY_HMAC is not supported: Saleor signs the webhooks with JWS, verified against "
        "Saleor's JWKS (SALEOR_ALLOWED_ORIGINS); remove the setting"])


def test_port_works_without_the_serve_command(pg_url: str, control_plane):
    port = free_port()
    env = _env(
        CONTROL_PLANE_URL=control_plane.url,
        SERVICE_JWT_SECRET=SERVICE_JWT_SECRET,
        SALEOR_ALLOWED_ORIGINS="https://shop.example.com",
        DATABASE_URL=pg_url,
    )
    process = subprocess.Popen([_script(), "--port", str(port)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        response = wait_http(f"http://127.0.0.1:{port}/readyz", ok=lambda r: r.status_code == 200, proc=process)
        assert response.json()["status"] == "ok"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def test_dead_letter_commands_answer_database_trouble_in_one_line(pg_url: str):
    fresh = _env(DATABASE_URL=pg_url)
    for argv in (["dead-letters", "list"], ["dead-letters", "replay", "1"]):
        result = cli(argv, fresh)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            "cmp-provisioner: the inbox table does not exist yet: run `cmp-provisioner migrate` (or start the service)"
        ]
    down = _env(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/inbox?connect_timeout=2")
    result = cli(["dead-letters", "list"], down)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("cmp-provisioner: the inbox database failed: OperationalError: connection")
    assert "Traceback" not in result.stderr


def test_dead_letters_list_says_when_it_stops_at_its_limit(pg_url: str):
    from service_src.provisioner.inbox import DEAD, InboxStore

    url = pg_url
    env = _env(DATABASE_URL=url)
    assert cli(["migrate"], env).returncode == 0
    store = InboxStore(url)
    for index in range(3):
        store.record("ORDER_FULLY_PAID", f"order-{index}", b"{}", status=DEAD)
    store.dispose()

    limited = cli(["dead-letters", "list", "--limit", "2"], env)
    assert [line.split("\t")[2] for line in limited.stdout.splitlines()] == ["order-0", "order-1"]
    assert limited.stderr == "2 dead letter(s) shown: stopped at --limit 2; more exist\n"
    everything = cli(["dead-letters", "list"], env)
    assert len(everything.stdout.splitlines()) == 3 and everything.stderr == "3 dead letter(s)\n"


@pytest.mark.parametrize("argv", [["--port", "x"], ["dead-letters", "replay"], ["dead-letters", "bogus"], ["--bogus"]])
def test_bad_arguments_are_one_line_with_the_usage(argv, capsys):
    assert_one_line_usage_error(main, argv, capsys, "cmp-provisioner")
