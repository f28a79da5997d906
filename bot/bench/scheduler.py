"""`bosun bench scheduler`: makespan and utilization of the real scheduler on a synthetic load."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bot.bench.report import machine_line
from bot.core.clock import SystemClock
from bot.core.task_states import TaskState
from bot.scheduling.locks import lock_key
from bot.scheduling.loop import Scheduler, SchedulerConfig
from bot.store import NewTask, Store
from bot.store.tables import Task

HOLDER = "bench-worker"


def synthetic_load(
    store: Store, *, tasks: int, branches: int, min_ms: int, max_ms: int, seed: int
) -> dict[int, float]:
    """Queue `tasks` tasks over `branches` branches; returns each task's run time in seconds."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable synthetic load, not a secret
    durations: dict[int, float] = {}
    for index in range(tasks):
        branch = f"feature/{rng.randrange(branches)}"
        task = store.tasks.create(
            NewTask(
                installation_id=1,
                repo_full_name="bench/repo",
                issue_number=index + 1,
                is_pull_request=False,
                task_name="bench",
                branch=branch,
                triggered_by="bench",
                trigger_delivery_id=f"bench-{index}",
                config_sha=None,
            )
        )
        assert task is not None and task.id is not None
        durations[task.id] = rng.uniform(min_ms, max_ms) / 1000
    return durations


async def _drive(store: Store, durations: dict[int, float], slots: int) -> tuple[float, int]:
    done = asyncio.Event()
    finished = 0

    async def fake_run(task: Task) -> None:
        nonlocal finished
        assert task.id is not None
        await asyncio.sleep(durations[task.id])
        key = lock_key(task.repo_full_name, task.branch)
        await asyncio.to_thread(
            store.tasks.finish_run, task.id, TaskState.PR_OPEN, lock_key=key, holder=HOLDER
        )
        finished += 1
        if finished == len(durations):
            done.set()

    config = SchedulerConfig(slots=slots, holder=HOLDER, lease_ttl=600, interval=1.0)
    scheduler = Scheduler(store=store, run_task=fake_run, clock=SystemClock(), config=config)
    started = time.perf_counter()
    loop = asyncio.create_task(scheduler.run_forever())
    await done.wait()
    makespan = time.perf_counter() - started
    await scheduler.stop()
    await loop
    return makespan, finished


def lower_bound(store: Store, durations: dict[int, float], slots: int) -> tuple[float, float]:
    """(total work / slots, longest chain of work on one branch)."""
    per_branch: dict[str, float] = defaultdict(float)
    for task in store.tasks.all("bench/repo"):
        if task.id is not None:
            per_branch[task.branch] += durations[task.id]
    return sum(durations.values()) / slots, max(per_branch.values())


def run(
    *,
    tasks: int,
    branches: int,
    slots: int,
    min_ms: int,
    max_ms: int,
    seed: int,
    database_url: str | None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store.connect(url, clock=SystemClock())
        store.migrate()
        durations = synthetic_load(
            store, tasks=tasks, branches=branches, min_ms=min_ms, max_ms=max_ms, seed=seed
        )
        work_bound, chain_bound = lower_bound(store, durations, slots)
        makespan, finished = asyncio.run(_drive(store, durations, slots))
        store.close()
    bound = max(work_bound, chain_bound)
    utilization = sum(durations.values()) / (slots * makespan)
    over = makespan / bound - 1
    print(f"{tasks} tasks on {branches} branches, {slots} slots, runs of {min_ms}-{max_ms} ms")
    print(f"dispatched {finished / makespan:.1f} tasks/s; slot utilization {utilization:.1%}")
    print(
        f"makespan {makespan:.2f} s; lower bound {bound:.2f} s (work/slots {work_bound:.2f} s, "
        f"longest branch chain {chain_bound:.2f} s); {over:+.1%} over the bound (target <= 10%)"
    )
    print(
        machine_line(
            "scheduler",
            {
                "tasks": tasks,
                "branches": branches,
                "slots": slots,
                "tasks_per_s": finished / makespan,
                "utilization": utilization,
                "makespan_s": makespan,
                "bound_s": bound,
                "over_bound_ratio": over,
            },
        )
    )
