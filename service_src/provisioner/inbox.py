"""The durable inbox: every verified delivery is a row, committed before Saleor gets its 200.

One row per (event, order id), so Saleor's retries and replays collapse onto the first delivery. Rows are
claimed by workers with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL) and leased by pushing
``next_attempt_at`` past the lease, so several replicas never work on the same row at once and a replica that
dies mid-row releases it when the lease ends. A finished write only lands while the worker still holds the
lease (``lease_token``); ``claimed_by`` names the replica (host:pid) that last claimed it. Dead letters are rows
in status ``dead`` with their reason. The table's schema is Alembic's (``schema.py``, ``migrations/``); the model
here is its head revision.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from . import schema

PENDING = "pending"  # waiting for (another) attempt
DONE = "done"  # the control plane has it
RECORDED = "recorded"  # ORDER_CREATED: kept, nothing to do
DEAD = "dead"  # permanent failure or retries exhausted; the CLI replays it
STATUSES = (PENDING, DONE, RECORDED, DEAD)
CANCELLED_EVENT = "ORDER_CANCELLED"


def utcnow() -> datetime:
    """Naive UTC: the columns are ``timestamp without time zone`` (revision 0001), so every timestamp is naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Delivery(Base):
    __tablename__ = "provisioner_inbox"
    __table_args__ = (
        UniqueConstraint("event", "order_id", name="uq_provisioner_inbox_event_order"),
        Index("ix_provisioner_inbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the verified raw body, parsed again by the worker
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the delivery's trace (tracing.py)


class CatchUpCursor(Base):
    """How far the catch-up has read Saleor's orders (catchup.py): one row per source, naive UTC like the inbox."""

    __tablename__ = "provisioner_catchup_cursor"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    read_until: Mapped[datetime] = mapped_column(DateTime)  # every order changed before this was read
    updated_at: Mapped[datetime] = mapped_column(DateTime)


CATCHUP_LOCK_ID = 727002  # pg advisory lock: one replica catches up at a time (727001 is the migrations')


@dataclass(frozen=True)
class NewDelivery:
    event: str
    order_id: str
    payload: bytes
    status: str = PENDING
    traceparent: str | None = None


@dataclass(frozen=True)
class Claimed:
    """A row a worker holds the lease on."""

    id: int
    event: str
    order_id: str
    payload: bytes
    attempts: int
    received_at: datetime
    lease_token: str
    result: dict[str, Any] | None
    cancelled: bool = False  # an ORDER_CANCELLED delivery for this order is in the inbox
    traceparent: str | None = None  # the delivery's trace context, for the worker's span


@dataclass(frozen=True)
class Finish:
    """What one attempt on a claimed row ends with; built by the worker, written by ``finish_many``."""

    row: Claimed
    status: str
    attempts: int
    delay_seconds: float = 0.0
    error: str | None = None
    result: dict[str, Any] | None = None

    @classmethod
    def complete(cls, row: Claimed, status: str, result: dict[str, Any] | None) -> Finish:
        return cls(row, status, row.attempts + 1, result=result)

    @classmethod
    def retry(cls, row: Claimed, delay_seconds: float, error: str, result: dict[str, Any] | None) -> Finish:
        return cls(row, PENDING, row.attempts + 1, delay_seconds, error, result)

    @classmethod
    def defer(cls, row: Claimed, delay_seconds: float, reason: str) -> Finish:
        """Back to the queue without counting an attempt: it waits on another row, not on a failure."""
        return cls(row, PENDING, row.attempts, delay_seconds, reason, row.result)

    @classmethod
    def dead(cls, row: Claimed, reason: str, result: dict[str, Any] | None) -> Finish:
        return cls(row, DEAD, row.attempts + 1, error=reason, result=result)


@dataclass(frozen=True)
class DeadLetter:
    id: int
    event: str
    order_id: str
    attempts: int
    reason: str | None
    received_at: datetime
    updated_at: datetime


_T = Delivery.__table__
_DEAD_LETTER_COLUMNS = (
    _T.c.id,
    _T.c.event,
    _T.c.order_id,
    _T.c.attempts,
    _T.c.last_error,
    _T.c.received_at,
    _T.c.updated_at,
)


def _record_statement():
    """INSERT of new deliveries, run with many parameter sets: SQLAlchemy sends them as multi-row INSERTs
    ("insertmanyvalues"); duplicates of (event, order id) are skipped and not returned."""
    return (
        postgresql.insert(_T)
        .on_conflict_do_nothing(index_elements=["event", "order_id"])
        .returning(_T.c.event, _T.c.order_id)
    )


def _claim_statement():
    """Lease up to ``b_limit`` due rows in one statement (``FOR UPDATE SKIP LOCKED``), returning them and whether
    their order has an ORDER_CANCELLED delivery."""
    t = _T
    due = (
        select(t.c.id)
        .where(t.c.status == PENDING, t.c.next_attempt_at <= bindparam("b_now"))
        .order_by(t.c.next_attempt_at, t.c.id)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    cancel = t.alias("cancel")
    cancelled = (
        select(cancel.c.id)
        .where(cancel.c.event == CANCELLED_EVENT, cancel.c.order_id == t.c.order_id)
        .exists()
        .label("cancelled")
    )
    returned = [t.c.id, t.c.event, t.c.order_id, t.c.payload, t.c.attempts, t.c.received_at, t.c.result,
                t.c.traceparent, cancelled]
    return (
        update(t)
        .where(t.c.id == due.c.id)
        .values(
            next_attempt_at=bindparam("b_until"),
            lease_token=bindparam("b_token"),
            claimed_by=bindparam("b_by"),
            updated_at=bindparam("b_now"),
        )
        .returning(*returned)
    )


def _finish_statement():
    """One attempt's outcome; matches nothing when the row's lease (``lease_token``) was lost meanwhile."""
    t = _T
    return (
        update(t)
        .where(t.c.id == bindparam("b_id"), t.c.lease_token == bindparam("b_token"))
        .values(
            lease_token=None,
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next"),
            last_error=bindparam("b_error"),
            result=bindparam("b_result", type_=JSON),
            updated_at=bindparam("b_now"),
        )
    )


def make_engine(url: str, *, pool_size: int = 10, synchronous_commit: bool = True) -> Engine:
    connect_args = {} if synchronous_commit else {"options": "-c synchronous_commit=off"}
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, connect_args=connect_args
    )


class InboxStore:
    """All SQL the service runs; blocking calls, run from the event loop in a worker thread."""

    def __init__(self, url: str, *, pool_size: int = 10, replica: str | None = None) -> None:
        self.engine = make_engine(url, pool_size=pool_size)
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"  # written to the rows it claims
        # The worker's own bookkeeping (leases, outcomes) commits without waiting for the WAL flush: a write
        # lost in a database crash only repeats an attempt, and every control-plane call is idempotent under
        # its key. Deliveries (``record_many``) always wait for the flush: they are committed before the 200.
        self.work_engine = make_engine(url, pool_size=pool_size, synchronous_commit=False)
        self._table = Delivery.__table__
        # Built once: SQLAlchemy then finds each compiled form in its cache without rebuilding the statement.
        self._record_statement = _record_statement()
        self._claim_statement = _claim_statement()
        self._finish_statement = _finish_statement()

    def migrate(self) -> tuple[str | None, str | None]:
        """Upgrade the schema to this code's revision (see ``schema.migrate``); (revision before, after)."""
        return schema.migrate(self.engine)

    def schema_state(self) -> schema.SchemaState:
        with self.engine.connect() as conn:
            return schema.schema_state(conn)

    def dispose(self) -> None:
        self.engine.dispose()
        self.work_engine.dispose()

    # ---- receiving -------------------------------------------------------------------------------------------
    def record(self, event_name: str, order_id: str, payload: bytes, *, status: str = PENDING) -> bool:
        """Insert one delivery; False when (event, order id) is already in the inbox."""
        return self.record_many([NewDelivery(event_name, order_id, payload, status)])[0]

    def record_many(self, deliveries: list[NewDelivery]) -> list[bool]:
        """Insert deliveries in one transaction (one commit for many webhooks); per delivery, whether it was new.

        A second delivery of the same (event, order id), in this batch or already stored, is not new.
        """
        now = utcnow()
        unique: dict[tuple[str, str], NewDelivery] = {}
        for delivery in deliveries:
            unique.setdefault((delivery.event, delivery.order_id), delivery)
        values = [
            {
                "event": d.event,
                "order_id": d.order_id,
                "payload": d.payload,
                "status": d.status,
                "attempts": 0,
                "next_attempt_at": now,
                "received_at": now,
                "updated_at": now,
                "traceparent": d.traceparent,
            }
            for d in unique.values()
        ]
        with self.engine.begin() as conn:
            inserted = {(row.event, row.order_id) for row in conn.execute(self._record_statement, values)}
        answers = []
        for delivery in deliveries:
            key = (delivery.event, delivery.order_id)
            answers.append(key in inserted and unique.get(key) is delivery)
        return answers

    # ---- working ---------------------------------------------------------------------------------------------
    def claim(self, limit: int, lease_seconds: float) -> list[Claimed]:
        """Lease up to ``limit`` due rows; rows another replica holds are skipped, not waited for.

        One statement: pick the due rows (``FOR UPDATE SKIP LOCKED``), push their ``next_attempt_at`` past the
        lease, and return them with whether their order has an ORDER_CANCELLED delivery in the inbox.
        """
        now = utcnow()
        token = secrets.token_hex(8)
        params = {
            "b_now": now,
            "b_limit": limit,
            "b_until": now + timedelta(seconds=lease_seconds),
            "b_token": token,
            "b_by": self.replica,
        }
        with self.work_engine.begin() as conn:
            rows = conn.execute(self._claim_statement, params).all()
        return [
            Claimed(
                r.id,
                r.event,
                r.order_id,
                bytes(r.payload),
                r.attempts,
                r.received_at,
                token,
                r.result,
                cancelled=r.cancelled,
                traceparent=r.traceparent,
            )
            for r in sorted(rows, key=lambda r: r.id)
        ]

    def finish_many(self, finishes: list[Finish]) -> None:
        """Write a batch's outcomes in one transaction; a row whose lease was lost meanwhile is left alone."""
        if not finishes:
            return
        now = utcnow()
        params = [
            {
                "b_id": f.row.id,
                "b_token": f.row.lease_token,
                "b_status": f.status,
                "b_attempts": f.attempts,
                "b_next": now + timedelta(seconds=f.delay_seconds),
                "b_error": f.error,
                "b_result": f.result,
                "b_now": now,
            }
            for f in finishes
        ]
        with self.work_engine.begin() as conn:
            conn.execute(self._finish_statement, params)

    def unsettled(self, event_name: str, order_id: str) -> bool:
        """Whether a row for (event, order id) still waits for work (pending)."""
        t = self._table
        with self.engine.connect() as conn:
            found = conn.execute(
                select(t.c.id).where(t.c.event == event_name, t.c.order_id == order_id, t.c.status == PENDING)
            ).first()
        return found is not None

    # ---- operators -------------------------------------------------------------------------------------------
    def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        t = self._table
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_DEAD_LETTER_COLUMNS).where(t.c.status == DEAD).order_by(t.c.id).limit(limit)
            ).all()
        return [DeadLetter(*row) for row in rows]

    def replay(self, delivery_id: int) -> DeadLetter:
        """Make a dead letter due again with a fresh attempt count; KeyError if it is not a dead letter."""
        t = self._table
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(*_DEAD_LETTER_COLUMNS, t.c.status).where(t.c.id == delivery_id).with_for_update()
            ).first()
            if row is None:
                raise KeyError(f"no inbox row with id {delivery_id}")
            if row.status != DEAD:
                raise KeyError(f"inbox row {delivery_id} is {row.status}, not a dead letter")
            conn.execute(
                update(t)
                .where(t.c.id == delivery_id)
                .values(status=PENDING, attempts=0, next_attempt_at=now, lease_token=None, updated_at=now)
            )
        return DeadLetter(*row[:-1])

    def counts(self) -> dict[str, int]:
        t = self._table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.status, func.count()).group_by(t.c.status)).all()
        found = {status: count for status, count in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    # ---- catch-up (catchup.py) ---------------------------------------------------------------------------------
    def try_catchup_lock(self) -> Connection | None:
        """A connection holding the catch-up's session advisory lock, or None when another replica holds it."""
        conn = self.engine.connect()
        try:
            got = conn.execute(select(func.pg_try_advisory_lock(CATCHUP_LOCK_ID))).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return None
        return conn

    @staticmethod
    def release_catchup_lock(conn: Connection) -> None:
        try:
            conn.execute(select(func.pg_advisory_unlock(CATCHUP_LOCK_ID)))
            conn.commit()
        finally:
            conn.close()  # closing the session releases it too, should the unlock fail

    def catchup_cursor(self, name: str) -> datetime | None:
        with self.engine.connect() as conn:
            return conn.execute(select(CatchUpCursor.read_until).where(CatchUpCursor.name == name)).scalar()

    def advance_catchup_cursor(self, name: str, read_until: datetime) -> datetime:
        """Move the cursor to ``read_until`` unless it is already later (an operator's run over an older window
        never moves it back); returns where it is."""
        now = utcnow()
        statement = postgresql.insert(CatchUpCursor).values(name=name, read_until=read_until, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"read_until": func.greatest(CatchUpCursor.read_until, statement.excluded.read_until),
                  "updated_at": now},
        ).returning(CatchUpCursor.read_until)
        with self.engine.begin() as conn:
            return conn.execute(statement).scalar_one()

    def oldest_pending_seconds(self) -> float:
        """How long the oldest pending row has waited since it was received (0 with none pending)."""
        t = self._table
        with self.engine.connect() as conn:
            oldest = conn.execute(select(func.min(t.c.received_at)).where(t.c.status == PENDING)).scalar()
        return max((utcnow() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
