"""The in-process worker: turns inbox rows into control-plane calls.

ORDER_FULLY_PAID -> POST /instances per offering the order buys; ORDER_CANCELLED -> POST /instances/cancel
(after the order's paid row has settled, so a cancel never overtakes the provisioning it should undo);
ORDER_CREATED is only recorded. Transient failures come back after an exponential backoff with jitter;
permanent ones, exhausted retries and unusable payloads become dead letters with the reason.

Idempotency: the contract's key is per order, ``saleor-order:{order_id}``, and the control plane tells lines
of one order apart by (offering_version_id, plan_id). So lines that buy the same offering and plan are merged
into one call with their quantities summed (two calls under one key and one offering would collide), and a
retry repeats exactly the same calls, which the control plane answers from its replay table.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import suppress
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import SQLAlchemyError

from service_src.common.tracing import Tracing

from .control_plane import ControlPlaneClient, ControlPlaneError
from .inbox import DEAD, DONE, PENDING, RECORDED, Claimed, Finish, InboxStore, utcnow
from .metrics import Metrics
from .offerings import Offering, offering_for_line
from .payloads import EventPayload, OrderEvent, PayloadError, parse_payload
from .settings import ProvisionerSettings
from .tracing import outcome, work_span

log = structlog.get_logger("cmp_provisioner.worker")


_JITTER = random.Random()


def backoff_seconds(attempt: int, base: float, cap: float, rng: random.Random = _JITTER) -> float:
    """Delay after failed attempt ``attempt`` (1-based): base * 2^(attempt-1), capped, then "equal jitter"
    (50-100% of it), so replicas that failed together do not retry together."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay / 2 + rng.uniform(0, delay / 2)


@dataclass(frozen=True)
class Purchase:
    """One POST /instances: an offering and plan of the order, with the quantity of all its lines."""

    offering: Offering
    quantity: int
    line_ids: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.offering.offering_version_id}:{self.offering.plan_id}"


def purchases(payload: EventPayload) -> list[Purchase]:
    merged: dict[Offering, Purchase] = {}
    for line in payload.order.lines:
        offering = offering_for_line(line)
        if offering is None:
            continue
        seen = merged.get(offering)
        merged[offering] = Purchase(
            offering,
            (seen.quantity if seen else 0) + line.quantity,
            (seen.line_ids if seen else ()) + (line.id,),
        )
    return list(merged.values())


class _Retry(Exception):
    def __init__(self, reason: str, result: dict | None) -> None:
        super().__init__(reason)
        self.result = result


class _Dead(Exception):
    def __init__(self, reason: str, result: dict | None = None) -> None:
        super().__init__(reason)
        self.result = result


class _Defer(Exception):
    pass


class Worker:
    def __init__(
        self, settings: ProvisionerSettings, store: InboxStore, control_plane: ControlPlaneClient, metrics: Metrics,
        tracing: Tracing | None = None,
    ) -> None:
        self._settings = settings
        self._tracing = tracing or Tracing()
        self._store = store
        self._cp = control_plane
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._stopping = False
        self._partial: asyncio.Task | None = None  # the one batch in flight that was claimed less than full

    def wake(self) -> None:
        """A delivery was just committed here: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Claim batches and work them, up to ``WORKER_BATCHES_IN_FLIGHT`` at once.

        One loop claims; each claimed batch is worked in its own task (its rows' calls concurrently, its
        outcomes in one transaction). While claims come back full (a backlog) the loop claims again at once, so
        the database round trips of one batch overlap the control-plane calls of the others; otherwise it
        sleeps until a delivery is committed here, a batch finishes, or the poll interval passes. At most one
        partial batch is in flight: deliveries committed meanwhile wait for it and then go out together, so a
        steady stream is worked in few, full batches instead of one claim and one write per delivery.
        """
        s = self._settings
        in_flight: set[asyncio.Task] = set()
        while not self._stopping:
            self._wake.clear()  # before claiming: a wake during the claim is not lost
            claimed: list[Claimed] = []
            if len(in_flight) < s.worker_batches_in_flight and self._partial is None:
                claimed = await self._claim()
                if claimed:
                    task = asyncio.create_task(self._batch(claimed), name="provisioner-batch")
                    in_flight.add(task)
                    if len(claimed) < s.worker_batch_size:
                        self._partial = task
                    task.add_done_callback(self._batch_done(in_flight))
            if len(claimed) >= s.worker_batch_size and len(in_flight) < s.worker_batches_in_flight:
                continue  # a full batch: more may be due
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=s.worker_poll_seconds)
        if in_flight:  # stopping: let the batches in hand finish and be written
            await asyncio.gather(*in_flight, return_exceptions=True)

    def _batch_done(self, in_flight: set[asyncio.Task]):
        def done(task: asyncio.Task) -> None:
            was_full = len(in_flight) >= self._settings.worker_batches_in_flight
            in_flight.discard(task)
            if task is self._partial:
                self._partial = None
                self._wake.set()  # what arrived meanwhile is claimed now
            elif was_full:
                self._wake.set()  # the loop waits for this free slot

        return done

    async def _claim(self) -> list[Claimed]:
        s = self._settings
        try:
            return await asyncio.to_thread(self._store.claim, s.worker_batch_size, s.worker_lease_seconds)
        except SQLAlchemyError as exc:
            log.warning("inbox_unavailable", error=type(exc).__name__)
        except Exception as exc:  # the loop outlives any one claim
            log.exception("worker_claim_failed", error=type(exc).__name__)
        return []

    async def _batch(self, rows: list[Claimed]) -> None:
        try:
            await self.work(rows)
        except SQLAlchemyError as exc:
            log.warning("inbox_unavailable", error=type(exc).__name__)
        except Exception as exc:  # the loop outlives any one batch; its rows return when their lease ends
            log.exception("worker_batch_failed", error=type(exc).__name__)

    async def run_once(self) -> int:
        """Claim one batch and work it (tests and tools; ``run`` is the service's loop)."""
        rows = await self._claim()
        await self.work(rows)
        return len(rows)

    async def work(self, rows: list[Claimed]) -> None:
        """Work claimed rows concurrently, then write all their outcomes in one transaction."""
        if not rows:
            return
        finishes = [f for f in await asyncio.gather(*(self._work(row) for row in rows)) if f is not None]
        await asyncio.to_thread(self._store.finish_many, finishes)
        for finish in finishes:
            self._report(finish)

    async def _work(self, row: Claimed) -> Finish | None:
        if not self._tracing.enabled:
            return await self._attempt(row)
        with work_span(self._tracing, row.event, row.order_id, row.attempts + 1, row.traceparent) as span:
            finish = await self._attempt(row)
            outcome(span, finish.status if finish else "crashed", finish.error if finish else "crashed")
            return finish

    async def _attempt(self, row: Claimed) -> Finish | None:
        s = self._settings
        try:
            status, result = await self._handle(row)
        except _Defer as exc:
            return Finish.defer(row, s.worker_poll_seconds, str(exc))
        except _Retry as exc:
            attempts = row.attempts + 1
            if attempts >= s.retry_max_attempts:
                return Finish.dead(row, f"gave up after {attempts} attempts: {exc}", exc.result)
            delay = backoff_seconds(attempts, s.retry_backoff_seconds, s.retry_backoff_max_seconds)
            return Finish.retry(row, delay, str(exc), exc.result)
        except _Dead as exc:
            return Finish.dead(row, str(exc), exc.result)
        except Exception as exc:  # a bug must not kill the loop; the row comes back after its lease
            log.exception("worker_row_crashed", id=row.id, saleor_event=row.event, error=type(exc).__name__)
            return None
        return Finish.complete(row, status, result)

    def _report(self, finish: Finish) -> None:
        row = finish.row
        fields = {"id": row.id, "saleor_event": row.event, "order_id": row.order_id}
        if finish.status == DEAD:
            outcome = "dead"
            log.error("dead_letter", **fields, reason=finish.error)
        elif finish.status == PENDING and finish.attempts > row.attempts:
            outcome = "retry"
            log.warning(
                "retry_scheduled",
                **fields,
                attempt=finish.attempts,
                delay_s=round(finish.delay_seconds, 3),
                error=finish.error,
            )
        elif finish.status == PENDING:
            return  # deferred behind another row: not an attempt
        else:
            outcome = finish.status
            log.info("row_done", **fields, status=finish.status)
        self._metrics.rows.labels(row.event, outcome).inc()

    async def _handle(self, row: Claimed) -> tuple[str, dict | None]:
        try:
            event = OrderEvent(row.event)
        except ValueError as exc:
            raise _Dead(f"unknown event {row.event!r}") from exc
        try:
            payload = parse_payload(row.payload, event)
        except PayloadError as exc:
            raise _Dead(f"payload unusable: {exc}") from exc
        if payload.order.id != row.order_id:
            raise _Dead(f"payload order id {payload.order.id!r} differs from the row's {row.order_id!r}")
        if event is OrderEvent.ORDER_CREATED:
            return RECORDED, None
        if event is OrderEvent.ORDER_FULLY_PAID:
            return DONE, await self._provision(row, payload)
        return DONE, await self._cancel(row)

    async def _provision(self, row: Claimed, payload: EventPayload) -> dict:
        order = payload.order
        wanted = purchases(payload)
        if not wanted:
            skus = [line.productSku or (line.variant.sku if line.variant else None) for line in order.lines]
            raise _Dead(f"no order line maps to an offering ({len(order.lines)} lines, SKUs {skus})")
        done: dict[str, str] = dict((row.result or {}).get("instances", {}))
        if row.cancelled:
            # The cancel overtook the payment (Saleor was retrying the paid delivery): provision nothing more;
            # the cancel, which waits for this row, then cancels whatever an earlier attempt made.
            return {"instances": done, "skipped": "order cancelled before it was provisioned"}
        for purchase in wanted:
            if purchase.key in done:
                continue
            body = {
                "order_id": order.id,
                "order_number": order.number,
                "user_email": order.userEmail,
                "channel": order.channel.slug if order.channel else None,
                "offering_version_id": purchase.offering.offering_version_id,
                "plan_id": purchase.offering.plan_id,
                "quantity": purchase.quantity,
            }
            try:
                answer = await self._cp.create_instance(body, order_id=order.id)
            except ControlPlaneError as exc:
                self._metrics.cp_calls.labels("create_instance", "transient" if exc.transient else "permanent").inc()
                partial = {"instances": done}
                if exc.transient:
                    raise _Retry(str(exc), partial) from exc
                raise _Dead(str(exc), partial) from exc
            self._metrics.cp_calls.labels("create_instance", "ok").inc()
            self._observe(row)
            done[purchase.key] = answer["instance_id"]
        return {"instances": done}

    async def _cancel(self, row: Claimed) -> dict:
        paid = OrderEvent.ORDER_FULLY_PAID.value
        if await asyncio.to_thread(self._store.unsettled, paid, row.order_id):
            raise _Defer("waiting for the order's ORDER_FULLY_PAID row to settle")
        try:
            answer = await self._cp.cancel_instances(row.order_id)
        except ControlPlaneError as exc:
            self._metrics.cp_calls.labels("cancel", "transient" if exc.transient else "permanent").inc()
            if exc.transient:
                raise _Retry(str(exc), None) from exc
            raise _Dead(str(exc)) from exc
        self._metrics.cp_calls.labels("cancel", "ok").inc()
        self._observe(row)
        return {"cancelled": list(answer.get("cancelled", []))}

    def _observe(self, row: Claimed) -> None:
        self._metrics.delivery_to_cp.observe(max(0.0, (utcnow() - row.received_at).total_seconds()))
