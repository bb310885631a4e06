"""empty_database gives each test a database as empty as a new one, reusing it."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.postgres import PostgresServer
from tests.support.tiers import server_fixture


@server_fixture(scope="module")
def server():
    with PostgresServer(fsync=False) as pg:
        yield pg


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _objects(url: str) -> list[tuple]:
    with psycopg.connect(_dsn(url)) as conn:
        return conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2").fetchall()


def test_a_used_database_comes_back_empty_and_its_connections_end(server):
    url = server.empty_database("reused")
    fresh = _objects(url)
    assert fresh == []
    holder = psycopg.connect(_dsn(url), autocommit=True)
    holder.execute("CREATE TYPE mood AS ENUM ('ok'); CREATE TABLE t (id serial PRIMARY KEY, m mood)")
    holder.execute("CREATE TABLE alembic_version (version_num varchar(32))")
    holder.execute("SELECT pg_advisory_lock(42)")

    assert server.empty_database("reused") == url
    assert _objects(url) == fresh
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        assert conn.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)  # the holder's session ended
        conn.execute("CREATE TABLE again (id int)")  # the public schema takes tables as a new one does
    with pytest.raises(psycopg.OperationalError):
        holder.execute("SELECT 1")


def test_a_database_with_a_schema_of_its_own_is_made_again(server):
    url = server.empty_database("schemas")
    with psycopg.connect(_dsn(url), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA extra; CREATE TABLE extra.t (id int)")
    server.empty_database("schemas")
    assert _objects(url) == []
