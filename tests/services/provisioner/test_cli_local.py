"""The console script as an operator runs it: environment only, a SQLite inbox, SIGTERM to stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.services.provisioner.helpers import SERVICE_JWT_SECRET, body_of, hmac_sign, order_payload, wait_until
from tests.support.net import free_port, wait_http


def test_cmp_provisioner_serves_from_env_with_sqlite(tmp_path: Path, control_plane):
    control_plane.add_issuer("cmp-provisioner", SERVICE_JWT_SECRET)
    port = free_port()
    env = {
        **os.environ,
        "CONTROL_PLANE_URL": control_plane.url,
        "SERVICE_JWT_SECRET": SERVICE_JWT_SECRET,
        "SALEOR_LEGACY_HMAC": "true",
        "SALEOR_WEBHOOK_SECRET": "test-saleor-webhook-secret",
        "DATABASE_URL": f"sqlite:///{tmp_path}/inbox.db",
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
            headers={"Saleor-Event": "order_fully_paid", "Saleor-Signature": hmac_sign(body)},
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

    listed = subprocess.run([script, "dead-letters", "list"], env=env, capture_output=True, text=True, check=True)
    assert listed.stdout == "" and "0 dead letter(s)" in listed.stderr


def test_bad_environment_is_one_line_per_variable(tmp_path: Path):
    script = shutil.which("cmp-provisioner", path=str(Path(sys.executable).parent))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALEOR_", "CONTROL_PLANE", "SERVICE_JWT"))}
    env["SALEOR_LEGACY_HMAC"] = "maybe"
    result = subprocess.run([script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "cmp-provisioner: CONTROL_PLANE_URL: Field required" in result.stderr
    assert "cmp-provisioner: SERVICE_JWT_SECRET: Field required" in result.stderr
    assert "cmp-provisioner: SALEOR_LEGACY_HMAC: Input should be a valid boolean" in result.stderr
