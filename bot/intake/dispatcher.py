"""Send stored deliveries through the router after the ack, and replay unhandled ones on restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from gidgethub import routing, sansio

from bot.core.clock import Clock
from bot.core.errors import BosunError, GitHubRateLimited, GitHubTransientError, StoreError
from bot.store import Store, StoredDelivery

log = structlog.get_logger("bosun.events")

TRANSIENT = (GitHubTransientError, GitHubRateLimited, StoreError)
STORE_RETRY = 2.0  # seconds before reading the store again after it failed


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: handled, ignored, failed (gave up) or error (a bug)."""

    name: str
    error: str | None = None


class EventDispatcher:
    """Drains unhandled deliveries in arrival order, one at a time, forever."""

    def __init__(
        self,
        *,
        store: Store,
        router: routing.Router,
        make_context: Callable[[StoredDelivery], Any],
        clock: Clock,
        max_attempts: int = 6,
        max_backoff: float = 60.0,
    ) -> None:
        self._store = store
        self._router = router
        self._make_context = make_context
        self._clock = clock
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        """Drain, then wait for a wake-up (or a backoff) until `stop` is called."""
        while not self._stop.is_set():
            self._wake.clear()
            try:
                backoff = await self.drain_once()
            except StoreError as exc:
                # The database is away for a moment: deliveries wait in it, so try again.
                log.warning("store unreachable; deliveries wait", error=str(exc))
                backoff = STORE_RETRY
            if backoff:
                await self._first_of(self._clock.sleep(backoff), self._stop.wait())
            else:
                await self._first_of(self._wake.wait(), self._stop.wait())

    async def stop(self) -> None:
        """Ask the loop to finish the delivery at hand; `run_forever` then returns."""
        self._stop.set()

    @staticmethod
    async def _first_of(*waits: Coroutine[Any, Any, Any]) -> None:
        tasks = [asyncio.ensure_future(wait) for wait in waits]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def drain_once(self) -> float:
        """Handle every stored, unhandled delivery; return a backoff if one must wait.

        Outcomes of a page are written in one transaction: handlers are idempotent, so a
        crash before that write only means the page is handled again on restart.
        """
        while True:
            pending = await asyncio.to_thread(self._store.deliveries.unhandled, limit=100)
            if not pending:
                return 0.0
            done: list[tuple[int, str, str | None]] = []
            backoff = 0.0
            for delivery in pending:
                if self._stop.is_set():
                    break
                outcome = await self.dispatch(delivery)
                if outcome.name == "retry" and delivery.attempts + 1 < self._max_attempts:
                    backoff = await self._postpone(delivery, outcome)
                    break
                if outcome.name == "retry":
                    outcome = Outcome("failed", outcome.error)
                done.append((delivery.id, outcome.name, outcome.error))
                await asyncio.sleep(0)  # let intake answer between deliveries
            await asyncio.to_thread(self._store.deliveries.mark_handled, done)
            if backoff or self._stop.is_set():
                return backoff

    async def _postpone(self, delivery: StoredDelivery, outcome: Outcome) -> float:
        await asyncio.to_thread(
            self._store.deliveries.record_attempt, delivery.id, error=outcome.error or ""
        )
        return float(min(self._max_backoff, 2**delivery.attempts))

    async def dispatch(self, delivery: StoredDelivery) -> Outcome:
        bound = log.bind(delivery_id=delivery.delivery_id, event=delivery.event)
        event = sansio.Event(
            orjson.loads(delivery.body), event=delivery.event, delivery_id=delivery.delivery_id
        )
        if not self._router.fetch(event):
            return Outcome("ignored")
        try:
            await self._router.dispatch(event, self._make_context(delivery))
        except TRANSIENT as exc:
            bound.warning("delivery will be retried", error=str(exc))
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        except BosunError as exc:  # permanent and expected, such as a missing GitHub App
            bound.warning("delivery not handled", error=str(exc))
            return Outcome("failed", f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a handler bug must not stop the others
            bound.exception("handler failed")
            return Outcome("error", f"{type(exc).__name__}: {exc}")
        return Outcome("handled")
