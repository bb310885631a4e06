"""The inbox schema under Alembic, on a real PostgreSQL: adopting a database the service made with ``create_all``
before migrations existed, downgrading and upgrading the latest revision, replicas migrating at once, and
/readyz while the database is behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from service_src.provisioner import schema
from service_src.provisioner.inbox import Base, InboxStore
from tests.services.provisioner.helpers import cli, inbox_rows

# What the service's ``Base.metadata.create_all`` created on PostgreSQL before migrations existed (compiled from
# the model of that release), kept verbatim so this test keeps checking the upgrade of such a database.
CREATE_ALL_DDL = """
CREATE TABLE provisioner_inbox (
    id BIGSERIAL NOT NULL,
    event VARCHAR(32) NOT NULL,
    order_id VARCHAR(256) NOT NULL,
    payload BYTEA NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    lease_token VARCHAR(32),
    received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    last_error TEXT,
    result JSON,
    PRIMARY KEY (id),
    CONSTRAINT uq_provisioner_inbox_event_order UNIQUE (event, order_id)
);
CREATE INDEX ix_provisioner_inbox_due ON provisioner_inbox (status, next_attempt_at);
"""

OLD_COLUMNS = "id, event, order_id, payload, status, attempts, next_attempt_at, lease_token, received_at, updated_at, "
OLD_COLUMNS += "last_error, result"

# These apps have no Saleor to catch up with: /readyz says so and stays ready.
OFF = ("off: SALEOR_API_URL, SALEOR_ORDERS_QUERY, SALEOR_APP_TOKEN are not set: orders are taken from webhooks only "
       "(docs/saleor.md, the app token)")


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _legacy_database(url: str) -> list[tuple]:
    """A database as the previous release left it, with rows in every status; returns its rows."""
    t = datetime(2026, 11, 30, 12, 0, 0, 123456)
    with psycopg.connect(_dsn(url)) as conn:
        conn.execute(CREATE_ALL_DDL)
        rows = [
            ("ORDER_FULLY_PAID", "T3JkZXI6MQ==", b'{"order":1}', "done", 1, t, None, t, t, None, '{"instances":{}}'),
            ("ORDER_FULLY_PAID", "T3JkZXI6Mg==", b"\x00\xffraw", "pending", 3, t, "abcd", t, t, "POST 503", None),
            ("ORDER_CANCELLED", "T3JkZXI6MQ==", b"{}", "dead", 8, t, None, t, t, "gave up", None),
            ("ORDER_CREATED", "T3JkZXI6Mw==", b"{}", "recorded", 0, t, None, t, t, None, None),
        ]
        for row in rows:
            conn.execute(
                "INSERT INTO provisioner_inbox (event, order_id, payload, status, attempts, next_attempt_at, "
                "lease_token, received_at, updated_at, last_error, result) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json)",
                row,
            )
    return _rows(url)


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(_dsn(url)) as conn:
        return conn.execute(f"SELECT {OLD_COLUMNS}::text FROM provisioner_inbox ORDER BY id").fetchall()


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return schema.current_revision(conn)
    finally:
        engine.dispose()


def _schema_differences(url: str) -> list:
    """What differs between the database and the model (Alembic's autogenerate comparison); [] when equal."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def _cli(*argv: str, url: str) -> subprocess.CompletedProcess:
    """``cmp-provisioner <argv>`` with DATABASE_URL=url (main() in this process: the command reads only that)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"DATABASE_URL": url}
    return cli(list(argv), env)


def test_a_create_all_database_upgrades_with_every_row_kept(pg_url):
    before = _legacy_database(pg_url)
    assert _revision(pg_url) is None

    result = _cli("migrate", url=pg_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"inbox schema at {schema.head_revision()} (was {schema.FIRST_REVISION})"
    assert _revision(pg_url) == schema.head_revision()
    assert _rows(pg_url) == before
    assert _schema_differences(pg_url) == []

    again = _cli("migrate", url=pg_url)
    assert again.stdout.strip() == f"inbox schema at {schema.head_revision()} (nothing to do)"

    # The upgraded inbox is worked as before: the pending row is claimable and names its claimer.
    store = InboxStore(pg_url, pool_size=1, replica="replica-a")
    try:
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE provisioner_inbox SET next_attempt_at = '2000-01-01'"))
        claimed = store.claim(10, lease_seconds=60)
        assert [row.order_id for row in claimed] == ["T3JkZXI6Mg=="]
        assert bytes(claimed[0].payload) == b"\x00\xffraw"
        assert {r.claimed_by for r in inbox_rows(store) if r.order_id == "T3JkZXI6Mg=="} == {"replica-a"}
    finally:
        store.dispose()


def test_the_latest_revision_downgrades_and_upgrades_again(pg_url):
    before = _legacy_database(pg_url)
    assert _cli("migrate", url=pg_url).returncode == 0
    head = schema.head_revision()
    engine = create_engine(pg_url)
    try:
        previous = schema.downgrade(engine, "-1")
        assert previous != head and previous is not None
        assert _rows(pg_url) == before
        assert _schema_differences(pg_url) != []  # the model is head's, the database one revision older

        assert schema.migrate(engine) == (previous, head)
        assert _rows(pg_url) == before
        assert _schema_differences(pg_url) == []
    finally:
        engine.dispose()


def test_an_empty_database_migrates_to_the_model(pg_url):
    result = _cli("migrate", url=pg_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"inbox schema at {schema.head_revision()} (was empty)"
    assert _schema_differences(pg_url) == []


def test_replicas_migrating_at_once_serialise_on_the_advisory_lock(pg_url):
    outcomes: list[object] = []

    def migrate() -> None:
        engine = create_engine(pg_url)
        try:
            outcomes.append(schema.migrate(engine))
        except Exception as exc:
            outcomes.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    head = schema.head_revision()
    assert sorted(outcomes, key=str) == sorted([(None, head)] + [(head, head)] * 3, key=str)


def test_a_foreign_table_without_a_revision_is_refused_in_one_line(pg_url):
    with psycopg.connect(_dsn(pg_url)) as conn:
        conn.execute("CREATE TABLE provisioner_inbox (id BIGSERIAL PRIMARY KEY, something TEXT)")
    result = _cli("migrate", url=pg_url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "cmp-provisioner: table provisioner_inbox exists without an Alembic revision and its columns are not "
        "revision 0001's: attempts, event, last_error, lease_token, next_attempt_at, order_id, payload, "
        "received_at, result, something, status, updated_at differ"
    ]
    assert _revision(pg_url) is None


def test_readyz_is_503_while_the_database_is_behind(pg_url, provisioner_factory):
    engine = create_engine(pg_url)
    try:
        schema.migrate(engine, schema.FIRST_REVISION)
        provisioner = provisioner_factory(migrate_on_start=False, worker_enabled=False)
        response = provisioner.client.get("/readyz")
        assert response.status_code == 503
        head = schema.head_revision()
        assert response.json() == {
            "status": "unavailable",
            "database": "ok",
            "schema": f"{schema.FIRST_REVISION}, behind {head} (run `cmp-provisioner migrate`)",
            "catch_up": OFF,
        }
        schema.migrate(engine)
        assert provisioner.client.get("/readyz").json() == {"status": "ok", "database": "ok", "schema": head,
                                                            "catch_up": OFF}

        # A newer release migrated first (its rollout): this one stays ready, and `migrate` refuses to touch it.
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        response = provisioner.client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["schema"] == f"9999, newer than this code's {head}"
        refused = _cli("migrate", url=pg_url)
        assert refused.returncode == 1
        assert "revision 9999, which this code does not know" in refused.stderr
    finally:
        engine.dispose()


def test_the_service_migrates_a_create_all_database_at_start(pg_url, provisioner_factory):
    before = _legacy_database(pg_url)
    provisioner = provisioner_factory(worker_enabled=False)
    assert provisioner.client.get("/readyz").json()["schema"] == schema.head_revision()
    assert _rows(pg_url) == before


def test_the_service_refuses_to_start_on_a_schema_it_cannot_migrate(pg_url, control_plane):
    with psycopg.connect(_dsn(pg_url)) as conn:
        conn.execute("CREATE TABLE provisioner_inbox (id BIGSERIAL PRIMARY KEY, something TEXT)")
    env = {
        "CONTROL_PLANE_URL": control_plane.url,
        "SERVICE_JWT_SECRET": "secret",
        "SALEOR_ALLOWED_ORIGINS": "https://shop.example.com",
    }
    os_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    script = shutil.which("cmp-provisioner", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [script, "serve", "--host", "127.0.0.1"],
        env=os_env | env | {"DATABASE_URL": pg_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("cmp-provisioner: table provisioner_inbox exists without an Alembic revision")
    assert _revision(pg_url) is None


@pytest.mark.server
def test_start_up_migration_waits_for_a_database_that_comes_up_late():
    """A pod can start before its database answers: the migration is retried until it does."""
    from service_src.provisioner.app import migrate_schema
    from tests.support.net import free_port
    from tests.support.postgres import PostgresServer

    server = PostgresServer(port=free_port(), fsync=False)
    store = InboxStore(server.url("postgres") + "?connect_timeout=1", pool_size=1)
    starter = threading.Timer(1.5, server.start)
    starter.start()
    try:
        migrate_schema(store)
        with store.engine.connect() as conn:
            assert schema.current_revision(conn) == schema.head_revision()
    finally:
        starter.join()
        store.dispose()
        server.stop()
