"""A throwaway PostgreSQL 15 cluster from the machine's own binaries, for tests and benchmarks.

``PostgresServer().start()`` runs initdb in a temporary directory, starts the server on a free loopback port
(as the ``postgres`` user when we are root; PostgreSQL refuses to run as root), and ``stop()`` shuts it down
and removes the directory. ``create_database(name)`` gives each test module its own database and
``empty_database(name)`` each test an empty one; ``url(name)`` is the SQLAlchemy URL (postgresql+psycopg://).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support import servers
from tests.support.net import free_port

_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in _BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(
        f"PostgreSQL binary {name!r} not found on PATH or in {_BIN_DIRS} (apt-get install postgresql-15)"
    )


class PostgresServer:
    user = "postgres"

    def __init__(self, *, port: int | None = None, fsync: bool = True) -> None:
        self.port = port or free_port()
        self.fsync = fsync
        self.host = "127.0.0.1"
        self._root: Path | None = None
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None
        self._started = False
        self._made: set[str] = set()

    @property
    def datadir(self) -> Path:
        assert self._root is not None
        return self._root / "data"

    def _cmd(self, *argv: str) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *argv]
        return list(argv)

    def start(self) -> PostgresServer:
        self._root = Path(tempfile.mkdtemp(prefix="cmp-pg-"))
        # The server (user postgres) writes its log inside its own directory; stop() keeps a copy at log_path.
        self.log_path = servers.log_path(self._root.name, self._root)
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._cmd(
                _binary("initdb"),
                "-D",
                str(self.datadir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self._root} "
            f"-c max_connections=200 -c fsync={'on' if self.fsync else 'off'} -c shared_buffers=64MB"
        )
        result = subprocess.run(
            self._cmd(
                _binary("pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self._root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            log = (self._root / "server.log").read_text(errors="replace")[-2000:]
            self._cleanup()
            raise RuntimeError(f"pg_ctl start failed ({result.returncode}): {result.stderr.strip()}\n{log}")
        self._started = True
        self._wait_ready()
        servers.announce(self, "PostgreSQL 15", f"{self.host}:{self.port}", self.log_path)
        return self

    def _wait_ready(self, timeout: float = 20.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for psycopg 3."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create (or recreate) ``name``; returns its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def empty_database(self, name: str) -> str:
        """``name``, as empty as a new database: created on the first call, emptied on later ones (its other
        connections ended, its public schema dropped and made again as PostgreSQL 15 makes it). CREATE DATABASE
        copies the template's ~7 MB, 0.1-0.4 s of the server's CPU; emptying takes milliseconds. A database
        holding a schema of its own is created again instead. Returns its SQLAlchemy URL."""
        import psycopg

        if name not in self._made:
            self._made.add(name)
            return self.create_database(name)
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            others = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                                  "('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%'").fetchall()
            if not others:
                conn.execute("DROP SCHEMA public CASCADE")
                conn.execute("CREATE SCHEMA public AUTHORIZATION pg_database_owner")
                conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
                conn.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
                return self.url(name)
        return self.create_database(name)

    def stop(self) -> None:
        if self._started:
            subprocess.run(
                self._cmd(_binary("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"),
                capture_output=True,
                text=True,
            )
            self._started = False
        self._cleanup()

    def _cleanup(self) -> None:
        if self._root is not None:
            live = self._root / "server.log"
            if self.log_path != live and live.exists():
                shutil.copyfile(live, self.log_path)
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
