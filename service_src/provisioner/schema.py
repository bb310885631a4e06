"""The inbox schema under Alembic: which revision a database is at, and upgrading it.

The revisions live in ``migrations/versions``. ``migrate`` runs on one connection in one transaction (PostgreSQL
has transactional DDL) holding an advisory lock, so replicas that start together upgrade one after the other and
the later ones find nothing left to do. A database created by the service before migrations existed (the table,
no ``alembic_version``) is recognised by its columns and stamped as the first revision before upgrading.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

INBOX_TABLE = "provisioner_inbox"
FIRST_REVISION = "0001"
# The lock create_all took before migrations existed: an old replica and a new one never change the schema at once.
ADVISORY_LOCK_ID = 727001


class SchemaError(Exception):
    """The database's schema cannot be brought to this code's revision; the message says why, in one line."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "service_src.provisioner:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The revision this code expects."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str
    known: bool  # the current revision is one this code has (False: a newer release migrated it)

    @property
    def behind(self) -> bool:
        return self.current != self.head and (self.current is None or self.known)

    def describe(self) -> str:
        if self.current == self.head:
            return self.head
        if self.current is None:
            return f"no revision (this code needs {self.head}; run `cmp-provisioner migrate`)"
        if self.behind:
            return f"{self.current}, behind {self.head} (run `cmp-provisioner migrate`)"
        return f"{self.current}, newer than this code's {self.head}"


def schema_state(connection: Connection) -> SchemaState:
    current = current_revision(connection)
    known = current is None or _known(current)
    return SchemaState(current, head_revision(), known)


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:  # what Alembic raises for an id it has no script for
        return False


def _adopt_unversioned(connection: Connection, config: Config) -> bool:
    """Stamp a database made by ``create_all`` before migrations as the first revision; False if there is none."""
    inspector = inspect(connection)
    if not inspector.has_table(INBOX_TABLE):
        return False
    columns = {c["name"] for c in inspector.get_columns(INBOX_TABLE)}
    first = import_module("service_src.provisioner.migrations.versions.0001_inbox")
    if columns != set(first.COLUMNS):
        raise SchemaError(
            f"table {INBOX_TABLE} exists without an Alembic revision and its columns are not revision "
            f"{FIRST_REVISION}'s: {', '.join(sorted(columns ^ set(first.COLUMNS)))} differ"
        )
    command.stamp(config, FIRST_REVISION)
    return True


def migrate(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision`` under the advisory lock; (revision before, revision after)."""
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        config = _config(connection)
        before = current_revision(connection)
        if before is None and _adopt_unversioned(connection, config):
            before = FIRST_REVISION
        elif before is not None and not _known(before):
            raise SchemaError(f"the database is at revision {before}, which this code does not know (a newer release)")
        command.upgrade(config, revision)
        return before, current_revision(connection)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Downgrade to ``revision`` ("-1" for one step) under the advisory lock; the revision after."""
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        command.downgrade(_config(connection), revision)
        return current_revision(connection)
