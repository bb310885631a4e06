"""Group commit for the inbox: deliveries that arrive while a commit is in flight share the next one.

Every delivery still waits for the commit that holds it before its 200 goes out, so durability is the same as
one transaction per delivery; under load the database sees one INSERT of many rows instead of many commits,
and the event loop one thread hop per batch. With one delivery at a time nothing waits: it commits at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .inbox import NewDelivery


class GroupCommitter:
    def __init__(self, record_many: Callable[[list[NewDelivery]], list[bool]], *, max_batch: int = 256) -> None:
        self._record_many = record_many
        self._max_batch = max_batch
        self._queue: list[tuple[NewDelivery, asyncio.Future[bool]]] = []
        self._flushing = False

    async def submit(self, delivery: NewDelivery) -> bool:
        """Whether the delivery was new, once it is committed; the database's exception if the commit failed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    created = await asyncio.to_thread(self._record_many, [d for d, _ in batch])
                except Exception as exc:  # handed to every waiter; the endpoint answers 503
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), was_new in zip(batch, created, strict=True):
                    if not future.done():
                        future.set_result(was_new)
        finally:
            self._flushing = False
