"""Scheduling: slots, branch locks that never double up, and recovery of lost workers."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.task_states import TaskState
from bot.scheduling.locks import lock_key
from bot.scheduling.loop import Scheduler, SchedulerConfig
from bot.scheduling.plan import Candidate, plan
from bot.store import NewTask, Store
from bot.store.database import Database
from bot.store.tables import Task
from tests.fakeclock import FakeClock


def queue(store: Store, *, issue: int, task_name: str = "fix", branch: str | None = None) -> Task:
    task = store.tasks.create(
        NewTask(
            installation_id=7,
            repo_full_name="acme/app",
            issue_number=issue,
            is_pull_request=False,
            task_name=task_name,
            branch=branch or f"bosun/{task_name}/{issue}",
            triggered_by="alice",
            trigger_delivery_id=f"d-{issue}-{task_name}",
            config_sha="abc",
        )
    )
    assert task is not None
    return task


class Runs:
    """Agent runs the test finishes by hand, to see what the scheduler does meanwhile."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gates: dict[int, asyncio.Event] = {}
        self.started: list[int] = []

    async def __call__(self, task: Task) -> None:
        assert task.id is not None
        self.started.append(task.id)
        gate = self.gates.setdefault(task.id, asyncio.Event())
        await gate.wait()
        self.store.tasks.transition(task.id, TaskState.RUNNING, TaskState.PR_OPEN)
        self.store.leases.release(lock_key(task.repo_full_name, task.branch), holder="w1")

    async def finish(self, task_id: int) -> None:
        self.gates.setdefault(task_id, asyncio.Event()).set()
        for _ in range(50):
            await asyncio.sleep(0)


def scheduler(store: Store, clock: FakeClock, runs: Runs, *, slots: int = 2) -> Scheduler:
    config = SchedulerConfig(slots=slots, holder="w1", lease_ttl=30)
    return Scheduler(store=store, run_task=runs, clock=clock, config=config)


def test_plan_passes_over_held_branches_without_blocking_others() -> None:
    """A task waiting on its branch lock never holds up unrelated tasks queued behind it."""
    candidates = [
        Candidate(1, "b:x"),
        Candidate(2, "b:x"),
        Candidate(3, "b:y"),
        Candidate(4, "b:z"),
    ]
    assert plan(candidates, held={"b:x"}, free_slots=2) == [
        Candidate(3, "b:y"),
        Candidate(4, "b:z"),
    ]
    assert plan(candidates, held=set(), free_slots=3) == [
        Candidate(1, "b:x"),
        Candidate(3, "b:y"),
        Candidate(4, "b:z"),
    ]
    assert plan(candidates, held=set(), free_slots=0) == []


@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=40),
    st.sets(st.integers(0, 5)),
    st.integers(0, 8),
)
@settings(max_examples=300)
def test_plan_never_starts_two_tasks_on_one_branch(
    queued: list[tuple[int, bool]], held: set[int], slots: int
) -> None:
    """Whatever is queued and held, a plan starts at most one task per branch and none held."""
    candidates = [Candidate(i, f"b:{branch}") for i, (branch, _) in enumerate(queued)]
    held_keys = {f"b:{branch}" for branch in held}
    chosen = plan(candidates, held=held_keys, free_slots=slots)
    keys = [c.lock_key for c in chosen]
    assert len(keys) == len(set(keys))
    assert not set(keys) & held_keys
    assert len(chosen) <= slots
    free_keys = {c.lock_key for c in candidates} - held_keys
    assert len(chosen) == min(slots, len(free_keys))


async def test_tasks_on_one_branch_run_one_after_the_other(store: Store, clock: FakeClock) -> None:
    """Two tasks on one branch run in turn; a task on another branch runs meanwhile."""
    first = queue(store, issue=5, task_name="fix", branch="feature/login")
    second = queue(store, issue=5, task_name="add-tests", branch="feature/login")
    other = queue(store, issue=6, task_name="fix")
    runs = Runs(store)
    sched = scheduler(store, clock, runs)
    assert await sched.reconcile_once() == [first.id, other.id]
    assert await sched.reconcile_once() == []
    await runs.finish(other.id or 0)
    assert await sched.reconcile_once() == [], "the free slot may not take the locked branch"
    await runs.finish(first.id or 0)
    assert await sched.reconcile_once() == [second.id]
    assert store.tasks.get(second.id or 0).state == TaskState.RUNNING  # type: ignore[union-attr]
    await runs.finish(second.id or 0)


async def test_slots_bound_the_running_tasks(store: Store, clock: FakeClock) -> None:
    """No more tasks run at once than there are worker slots."""
    for issue in range(1, 6):
        queue(store, issue=issue)
    runs = Runs(store)
    sched = scheduler(store, clock, runs, slots=3)
    assert len(await sched.reconcile_once()) == 3
    assert len(store.tasks.running()) == 3
    for task_id in sorted(sched.running):
        await runs.finish(task_id)
    assert len(await sched.reconcile_once()) == 2


async def test_a_dead_workers_task_is_retried_once_then_failed(
    store: Store, clock: FakeClock
) -> None:
    """A worker that dies stops renewing; its lease lapses, the task is retried, then failed."""
    task = queue(store, issue=9)
    assert task.id is not None
    key = lock_key("acme/app", task.branch)
    assert store.tasks.claim(task.id, lock_key=key, holder="dead-worker", ttl=30) is not None
    runs = Runs(store)
    sched = scheduler(store, clock, runs)
    assert await sched.reconcile_once() == [], "its lease is still live"
    clock.advance(31)
    assert await sched.reconcile_once() == [task.id], "requeued and claimed again"
    retried = store.tasks.get(task.id)
    assert retried is not None and (retried.attempts, retried.worker_id) == (2, "w1")
    # This worker dies too: the second loss exhausts the default attempts.
    sched._running.clear()
    clock.advance(31)
    assert await sched.reconcile_once() == []
    failed = store.tasks.get(task.id)
    assert failed is not None and failed.state == TaskState.FAILED
    assert failed.reason == "worker lost; no attempts left"
    assert store.leases.all() == [], "no lock stays held"
    actions = [r.action for r in store.audit.records()]
    assert actions == ["task.requeued", "task.failed"]


def test_a_lock_is_claimed_by_exactly_one_of_many_racing_workers(store: Store) -> None:
    """Workers on many machines racing for one task: one wins, the task runs once."""
    task = queue(store, issue=3)
    assert task.id is not None
    key = lock_key("acme/app", task.branch)
    stores = [Store(Database(store.db.engine, clock=store.db.clock)) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda pair: pair[1].tasks.claim(
                    task.id or 0, lock_key=key, holder=f"w{pair[0]}", ttl=30
                ),
                enumerate(stores),
            )
        )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    [lease] = store.leases.all()
    assert lease.holder == winners[0].worker_id
    assert store.tasks.get(task.id).attempts == 1  # type: ignore[union-attr]


def test_a_lease_renews_only_for_its_holder(store: Store, clock: FakeClock) -> None:
    """A worker that lost its lease learns so when it renews, and must stop."""
    task = queue(store, issue=4)
    assert task.id is not None
    key = lock_key("acme/app", task.branch)
    store.tasks.claim(task.id, lock_key=key, holder="w1", ttl=10)
    assert store.leases.renew(key, holder="w1", ttl=10)
    assert not store.leases.renew(key, holder="w2", ttl=10)
    store.leases.release(key, holder="w1")
    assert not store.leases.renew(key, holder="w1", ttl=10)


async def test_random_load_never_runs_two_tasks_on_one_branch(
    sqlite_store: Store, clock: FakeClock
) -> None:
    """Under a random mix of tasks, branches and finishes, branch locks are never shared."""
    rng = random.Random(7)
    store = sqlite_store
    for issue in range(60):
        branch = f"feature/{rng.randrange(8)}"
        queue(store, issue=issue, task_name=f"t{issue}", branch=branch)
    runs = Runs(store)
    sched = scheduler(store, clock, runs, slots=4)
    for _ in range(200):
        await sched.reconcile_once()
        running = store.tasks.running()
        branches = [t.branch for t in running]
        assert len(branches) == len(set(branches))
        assert len(running) <= 4
        if running:
            await runs.finish(rng.choice(running).id or 0)
        if not running and not store.tasks.queued(limit=1):
            break
    assert {t.state for t in store.tasks.all("acme/app")} == {TaskState.PR_OPEN}
