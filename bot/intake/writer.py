"""Group commit for intake: deliveries that arrive together are stored in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from bot.store import NewDelivery

InsertBatch = Callable[[Sequence[NewDelivery]], set[str]]
_Item = tuple[NewDelivery, "asyncio.Future[bool]"]


class DeliveryWriter:
    """Queue deliveries; one background task commits them in batches, off the event loop.

    `submit` returns only after the delivery's batch is committed, so an ack that follows
    it is never ahead of the disk. Batching is what keeps full durability cheap: while one
    commit is on its way to disk, the next batch gathers.
    """

    def __init__(self, insert_batch: InsertBatch, *, max_batch: int = 1000) -> None:
        self._insert_batch = insert_batch
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop: a batch in flight is never abandoned."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    async def submit(self, delivery: NewDelivery) -> bool:
        """Store one delivery; True when it is new, False when its id was seen before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((delivery, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Item] = []
            item = await self._queue.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= self._max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Item]) -> None:
        unique: dict[str, NewDelivery] = {}
        for delivery, _ in batch:
            unique.setdefault(delivery.delivery_id, delivery)
        try:
            inserted = await asyncio.to_thread(self._insert_batch, list(unique.values()))
        except Exception as exc:  # every waiter must hear about the failure, whatever it is
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for delivery, future in batch:
            if future.done():
                continue
            is_new = delivery.delivery_id in inserted
            inserted.discard(delivery.delivery_id)  # a repeat in the same batch is a duplicate
            future.set_result(is_new)
