"""The reconcile loop: a pure `plan()` of which queued tasks start, and a thin executor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from bot.core.clock import Clock
from bot.core.task_states import TaskState
from bot.scheduling.locks import lock_key
from bot.scheduling.plan import Candidate, plan
from bot.store import AuditEntry, Store
from bot.store.tables import Task

log = structlog.get_logger("bosun.scheduler")

RunTask = Callable[[Task], Coroutine[Any, Any, None]]
OnWorkerLost = Callable[[Task], Coroutine[Any, Any, None]]
SyncPublications = Callable[[], Coroutine[Any, Any, int]]


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    slots: int = 2
    holder: str = "bosun"
    lease_ttl: float = 60.0
    interval: float = 5.0  # periodic resync, so a missed wake-up heals
    lookahead: int = 20  # queued candidates read per free slot


class Scheduler:
    """Starts queued tasks in free slots under their branch locks; recovers lost workers."""

    def __init__(
        self,
        *,
        store: Store,
        run_task: RunTask,
        clock: Clock,
        config: SchedulerConfig,
        on_worker_lost: OnWorkerLost | None = None,
        sync_publications: SyncPublications | None = None,
    ) -> None:
        self._store = store
        self._run_task = run_task
        self._clock = clock
        self._config = config
        self._on_worker_lost = on_worker_lost
        self._sync_publications = sync_publications
        self._publishing: asyncio.Task[int] | None = None
        self._running: dict[int, asyncio.Task[None]] = {}
        self._recovering: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._next_recovery = float("-inf")
        # Look for lost workers at least twice per lease, so none waits long to be retried.
        self._pause = min(config.interval, config.lease_ttl / 2)

    @property
    def running(self) -> frozenset[int]:
        return frozenset(self._running)

    def wake(self) -> None:
        self._wake.set()

    async def reconcile_once(self) -> list[int]:
        """One pass: recover lost runs and publish what GitHub missed (now and then), then
        start what fits.

        Returns the started task ids. Recovery reads every running task, so it runs on a
        timer (twice per lease at least) rather than on every wake-up from a finished run.
        """
        now = self._clock.monotonic()
        if now >= self._next_recovery:
            self._next_recovery = now + self._pause
            await self._recover_lost_workers()
            self._start_publishing()
        free = self._config.slots - len(self._running)
        if free <= 0:
            return []
        claimed = await asyncio.to_thread(self._claim, free)
        for task in claimed:
            self._start(task)
        return [task.id for task in claimed if task.id is not None]

    def _claim(self, free: int) -> list[Task]:
        """Read the queue and the held locks, plan, and claim: one trip off the event loop."""
        queued = self._store.tasks.queued_candidates(limit=free * self._config.lookahead)
        held = self._store.leases.live_keys()
        candidates = [
            Candidate(task_id, lock_key(repo, branch)) for task_id, repo, branch in queued
        ]
        claimed = []
        for candidate in plan(candidates, held=held, free_slots=free):
            task = self._store.tasks.claim(
                candidate.task_id,
                lock_key=candidate.lock_key,
                holder=self._config.holder,
                ttl=self._config.lease_ttl,
            )
            if task is not None:
                claimed.append(task)
        return claimed

    def _start_publishing(self) -> None:
        """Publish what GitHub missed, beside the loop: its GitHub calls must not stall
        scheduling, and one such pass runs at a time."""
        if self._sync_publications is None:
            return
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.create_task(self._sync_publications(), name="publish")
            self._publishing.add_done_callback(_log_failure("publish pass failed"))

    def _start(self, task: Task) -> None:
        assert task.id is not None
        run = asyncio.create_task(self._run_task(task), name=f"task-{task.id}")
        self._running[task.id] = run
        run.add_done_callback(lambda _: self._finished(task))

    def _finished(self, task: Task) -> None:
        if task.id is not None:
            self._running.pop(task.id, None)
        self._wake.set()

    async def _recover_lost_workers(self) -> None:
        """Running tasks whose lease is gone: `on_worker_lost` applies the failure policy;
        without it, retry while attempts remain, else fail."""
        orphans = await asyncio.to_thread(self._store.tasks.orphaned)
        for task in orphans:
            if task.id is None or task.id in self._running or task.id in self._recovering:
                continue
            log.warning("worker lost", task_id=task.id, worker=task.worker_id)
            if self._on_worker_lost is not None:
                # Off the reconcile loop: a rollback's clone and push must not stall scheduling.
                recovery = asyncio.create_task(
                    self._on_worker_lost(task), name=f"recover-{task.id}"
                )
                self._recovering[task.id] = recovery
                recovery.add_done_callback(self._recovered(task.id))
                continue
            retry = task.attempts < task.max_attempts
            target = TaskState.QUEUED if retry else TaskState.FAILED
            reason = "worker lost; retrying" if retry else "worker lost; no attempts left"
            audit = AuditEntry(
                actor="bosun",
                action="task.requeued" if retry else "task.failed",
                repo_full_name=task.repo_full_name,
                config_sha=task.config_sha,
                detail={"reason": reason, "attempts": task.attempts, "worker": task.worker_id},
            )
            await asyncio.to_thread(
                self._store.tasks.transition,
                task.id,
                TaskState.RUNNING,
                target,
                audit=audit,
                reason=reason,
            )
        await asyncio.to_thread(self._store.leases.drop_expired)

    async def run_forever(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                await self.reconcile_once()
            except Exception:  # a failed pass must not end scheduling; the next one retries
                log.exception("reconcile pass failed")
            waits = [self._wake.wait(), self._stop.wait(), self._clock.sleep(self._pause)]
            tasks = [asyncio.ensure_future(wait) for wait in waits]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _recovered(self, task_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(recovery: asyncio.Task[None]) -> None:
            self._recovering.pop(task_id, None)
            if not recovery.cancelled() and recovery.exception() is not None:
                log.error("recovery failed", task_id=task_id, error=str(recovery.exception()))
            self._wake.set()  # a retried task may be runnable now

        return done

    async def stop(self) -> None:
        """Stop scheduling and cancel local runs; their leases lapse and they are retried.
        Recoveries under way finish: each is one conditional write and what it reports."""
        self._stop.set()
        runs = list(self._running.values())
        for run in runs:
            run.cancel()
        publishing = [self._publishing] if self._publishing is not None else []
        for pass_ in publishing:
            pass_.cancel()
        await asyncio.gather(*runs, *self._recovering.values(), *publishing, return_exceptions=True)


def _log_failure(message: str) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(message, error=str(task.exception()))

    return done
