"""Random sequences of what people, workers and GitHub do never break the task state machine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot.errors import IllegalTransition
from bot.scheduler import lock_key
from bot.store import NewTask, Store
from bot.task_states import ACTIVE_TASK_STATES, TRANSITIONS, TaskState
from tests.fakeclock import FakeClock

ISSUES = st.integers(1, 3)
TASK_NAMES = st.sampled_from(["fix", "docs"])
WORKERS = st.sampled_from(["w1", "w2"])
TTL = 30.0


class TaskLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.store = Store.connect(f"sqlite:///{Path(self.dir.name) / 'b.db'}", clock=self.clock)
        self.store.migrate()
        self.deliveries = 0

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    def _task(self, issue: int, name: str, state: TaskState) -> int | None:
        for task in self.store.tasks_for_issue("acme/app", issue):
            if task.task_name == name and task.state == state:
                return task.id
        return None

    @rule(issue=ISSUES, name=TASK_NAMES, permitted=st.booleans())
    def label(self, issue: int, name: str, permitted: bool) -> None:
        self.deliveries += 1
        self.store.create_task(
            NewTask(
                installation_id=1,
                repo_full_name="acme/app",
                issue_number=issue,
                is_pull_request=False,
                task_name=name,
                branch=f"bosun/{name}/{issue}",
                triggered_by="alice",
                trigger_delivery_id=f"d-{self.deliveries}",
                config_sha=None,
            ),
            state=TaskState.QUEUED if permitted else TaskState.HELD,
        )

    @rule(issue=ISSUES, name=TASK_NAMES)
    def unlabel(self, issue: int, name: str) -> None:
        self.store.request_cancel("acme/app", issue, name, reason="label removed")

    @rule(issue=ISSUES, name=TASK_NAMES)
    def ok_to_run(self, issue: int, name: str) -> None:
        task_id = self._task(issue, name, TaskState.HELD)
        if task_id is not None:
            self.store.transition(task_id, TaskState.HELD, TaskState.QUEUED)

    @rule(issue=ISSUES, name=TASK_NAMES, worker=WORKERS)
    def claim(self, issue: int, name: str, worker: str) -> None:
        task_id = self._task(issue, name, TaskState.QUEUED)
        if task_id is not None:
            key = lock_key("acme/app", f"bosun/{name}/{issue}")
            self.store.claim_task(task_id, lock_key=key, holder=worker, ttl=TTL)

    @rule(
        issue=ISSUES,
        name=TASK_NAMES,
        end=st.sampled_from([TaskState.PR_OPEN, TaskState.FAILED, TaskState.CANCELLED]),
    )
    def worker_finishes(self, issue: int, name: str, end: TaskState) -> None:
        task_id = self._task(issue, name, TaskState.RUNNING)
        if task_id is not None:
            task = self.store.task(task_id)
            assert task is not None and task.worker_id is not None
            key = lock_key("acme/app", task.branch)
            self.store.finish_run(task_id, end, lock_key=key, holder=task.worker_id)

    @rule(seconds=st.sampled_from([1.0, TTL + 1]))
    def time_passes_and_lost_workers_are_recovered(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for task in self.store.orphaned_running_tasks():
            assert task.id is not None
            target = TaskState.QUEUED if task.attempts < task.max_attempts else TaskState.FAILED
            self.store.transition(task.id, TaskState.RUNNING, target)
        self.store.drop_expired_leases()

    @rule(issue=ISSUES, name=TASK_NAMES, merged=st.booleans())
    def pull_request_closes(self, issue: int, name: str, merged: bool) -> None:
        task_id = self._task(issue, name, TaskState.PR_OPEN)
        if task_id is not None:
            end = TaskState.DONE if merged else TaskState.ABANDONED
            self.store.transition(task_id, TaskState.PR_OPEN, end)

    @rule(issue=ISSUES, name=TASK_NAMES, state=st.sampled_from(list(TaskState)))
    def a_stray_write_is_refused_unless_legal(
        self, issue: int, name: str, state: TaskState
    ) -> None:
        target = state
        for task in self.store.tasks_for_issue("acme/app", issue):
            if task.task_name != name or task.id is None:
                continue
            legal = (TaskState(task.state), target) in TRANSITIONS
            try:
                self.store.transition(task.id, TaskState(task.state), target)
            except IllegalTransition:
                assert not legal
            else:
                assert legal
                if target == TaskState.RUNNING:  # a raw write took no lease: put it back
                    self.store.transition(task.id, TaskState.RUNNING, TaskState.FAILED)

    @invariant()
    def states_are_known_and_one_active_task_per_name(self) -> None:
        active: set[tuple[int, str]] = set()
        for task in self.store.tasks("acme/app"):
            state = TaskState(task.state)
            if state in ACTIVE_TASK_STATES:
                assert (task.issue_number, task.task_name) not in active
                active.add((task.issue_number, task.task_name))

    @invariant()
    def no_finished_task_holds_a_lock_and_no_branch_has_two(self) -> None:
        running = {t.id: t for t in self.store.running_tasks()}
        branches = [t.branch for t in running.values()]
        assert len(branches) == len(set(branches))
        for lease in self.store.leases():
            assert lease.task_id in running, f"lease {lease.key} outlived its run"


TaskLife.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_task_life = TaskLife.TestCase
