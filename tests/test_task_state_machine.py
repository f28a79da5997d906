"""Random sequences of what people, workers and GitHub do never break the task state machine."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot.config.models import Failure
from bot.core.dependencies import WaitingTask, ready_to_release, stranded_by, unmet_dependencies
from bot.core.errors import IllegalTransition
from bot.core.failures import Action, Attempts, FailureKind, decide
from bot.core.task_states import ACTIVE_TASK_STATES, TRANSITIONS, TaskState
from bot.scheduling.locks import lock_key
from bot.store import NewTask, Store
from bot.store.tables import Task
from tests.fakeclock import FakeClock

ISSUES = st.integers(1, 2)
TASK_NAMES = st.sampled_from(["fix", "docs"])
DEPENDS_ON = {"fix": (), "docs": ("fix",)}  # docs runs once the issue's fix has merged
WORKERS = st.sampled_from(["w1", "w2"])
TTL = 30.0
RETRYABLE = sorted(kind for kind in FailureKind if kind.retryable)
POLICY = Failure.model_validate(
    {"retry": {"attempts": 1, "backoff_seconds": 5}, "escalate": {"tier": "large"}}
)


class TaskLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.clock = FakeClock()
        self.store = Store.connect(f"sqlite:///{Path(self.dir.name) / 'b.db'}", clock=self.clock)
        self.store.migrate()
        self.deliveries = 0
        self.tampered: set[int] = set()  # issues a stray write reached past the handlers

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    def _task(self, issue: int, name: str, state: TaskState) -> int | None:
        for task in self.store.tasks.for_issue("acme/app", issue):
            if task.task_name == name and task.state == state:
                return task.id
        return None

    def _unmet(self, issue: int, name: str) -> list[str]:
        return unmet_dependencies(DEPENDS_ON[name], self.store.tasks.for_issue("acme/app", issue))

    def _waiting(self, issue_tasks: list[Task]) -> list[WaitingTask]:
        return [
            WaitingTask(task.id, task.task_name, DEPENDS_ON[task.task_name])
            for task in issue_tasks
            if task.state == TaskState.WAITING and task.id is not None
        ]

    def _release_waiting(self, issue: int) -> None:
        """What the handlers do after a merge."""
        tasks = self.store.tasks.for_issue("acme/app", issue)
        for task in ready_to_release(self._waiting(tasks), tasks):
            self.store.tasks.transition(task.task_id, TaskState.WAITING, TaskState.QUEUED)

    def _cancel_stranded(self, ended: Task) -> None:
        """What the handlers do after an abandon or a cancel."""
        tasks = self.store.tasks.for_issue("acme/app", ended.issue_number)
        for stranded in stranded_by(ended, self._waiting(tasks), tasks):
            self.store.tasks.transition(
                stranded.task.task_id, TaskState.WAITING, TaskState.CANCELLED
            )

    @initialize(worker=WORKERS)
    def a_fix_is_running(self, worker: str) -> None:
        """Every sequence starts where the races are: one run under way."""
        self.label(1, "fix", permitted=True)
        self.claim(0, worker)

    @rule(issue=ISSUES, name=TASK_NAMES, permitted=st.booleans())
    def label(self, issue: int, name: str, permitted: bool) -> None:
        self.deliveries += 1
        state = TaskState.WAITING if self._unmet(issue, name) else TaskState.QUEUED
        if not permitted:
            state = TaskState.HELD
        self.store.tasks.create(
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
            state=state,
        )

    @rule(issue=ISSUES, name=TASK_NAMES)
    def unlabel(self, issue: int, name: str) -> None:
        ended = self.store.tasks.request_cancel("acme/app", issue, name, reason="label removed")
        if ended is not None:
            self._cancel_stranded(ended)

    @rule(issue=ISSUES, name=TASK_NAMES)
    def ok_to_run(self, issue: int, name: str) -> None:
        task_id = self._task(issue, name, TaskState.HELD)
        if task_id is not None:
            target = TaskState.WAITING if self._unmet(issue, name) else TaskState.QUEUED
            self.store.tasks.transition(task_id, TaskState.HELD, target)

    @precondition(lambda self: bool(self.store.tasks.queued(limit=1)))
    @rule(pick=st.integers(0, 5), worker=WORKERS)
    def claim(self, pick: int, worker: str) -> None:
        queued = self.store.tasks.queued(limit=6)
        task = queued[pick % len(queued)]
        assert task.id is not None
        key = lock_key("acme/app", task.branch)
        self.store.tasks.claim(task.id, lock_key=key, holder=worker, ttl=TTL)

    @rule(
        issue=ISSUES,
        name=TASK_NAMES,
        end=st.sampled_from([TaskState.PR_OPEN, TaskState.FAILED, TaskState.CANCELLED]),
    )
    def worker_finishes(self, issue: int, name: str, end: TaskState) -> None:
        task_id = self._task(issue, name, TaskState.RUNNING)
        if task_id is not None:
            task = self.store.tasks.get(task_id)
            assert task is not None and task.worker_id is not None
            key = lock_key("acme/app", task.branch)
            self.store.tasks.finish_run(task_id, end, lock_key=key, holder=task.worker_id)

    @rule(pick=st.integers(0, 5), kind=st.sampled_from(FailureKind))
    def a_run_fails_and_the_failure_policy_decides(self, pick: int, kind: FailureKind) -> None:
        task = self._running(pick)
        if task is None or task.id is None or task.worker_id is None:
            return
        target, fields = self._ending(task, kind)
        key = lock_key("acme/app", task.branch)
        self.store.tasks.finish_run(task.id, target, lock_key=key, holder=task.worker_id, **fields)

    @rule(issue=ISSUES, name=TASK_NAMES)
    def someone_cancels(self, issue: int, name: str) -> None:
        self.store.tasks.request_cancel("acme/app", issue, name, reason="cancelled")

    @precondition(lambda self: bool(self.store.tasks.running()))
    @rule(pick=st.integers(0, 5), kind=st.sampled_from(RETRYABLE))
    def a_cancel_arrives_as_the_run_fails(self, pick: int, kind: FailureKind) -> None:
        """The worker read no cancel, decided a retry, and the cancel lands before its write."""
        task = self._running(pick)
        if task is not None:
            self.someone_cancels(task.issue_number, task.task_name)
            self.a_run_fails_and_the_failure_policy_decides(pick, kind)

    def _running(self, pick: int) -> Task | None:
        running = self.store.tasks.running()
        return running[pick % len(running)] if running else None

    @rule(seconds=st.sampled_from([1.0, TTL + 1]))
    def time_passes_and_lost_workers_are_recovered(self, seconds: float) -> None:
        """Two replicas see the same lost runs; each ends them as the policy says."""
        self.clock.advance(seconds)
        orphans = self.store.tasks.orphaned()
        for _replica in range(2):
            for task in orphans:
                assert task.id is not None
                run = {"worker_id": task.worker_id, "attempt": task.attempts}
                if task.cancel_requested:
                    self.store.tasks.end_lost_run(task.id, TaskState.CANCELLED, **run)
                    continue
                target, fields = self._ending(task, FailureKind.WORKER_LOST)
                self.store.tasks.end_lost_run(task.id, target, **run, **fields)
        self.store.leases.drop_expired()

    def _ending(self, task: Task, kind: FailureKind) -> tuple[TaskState, dict[str, object]]:
        attempts = Attempts(task.attempts, task.max_attempts, task.tier, task.escalated)
        decision = decide(POLICY, kind, attempts)
        if decision.action == Action.RETRY:
            not_before = self.clock.now() + timedelta(seconds=decision.delay_seconds)
            return TaskState.QUEUED, {"not_before": not_before}
        if decision.action == Action.ESCALATE_TIER:
            fields = {"tier": decision.tier, "escalated": True, "max_attempts": task.attempts + 1}
            return TaskState.QUEUED, fields
        return TaskState.FAILED, {"failure_kind": kind.value}

    @rule(issue=ISSUES, name=TASK_NAMES, merged=st.booleans())
    def pull_request_closes(self, issue: int, name: str, merged: bool) -> None:
        task_id = self._task(issue, name, TaskState.PR_OPEN)
        if task_id is not None:
            self._close_pull_request(task_id, merged=merged)

    @rule(pick=st.integers(0, 5), worker=WORKERS, merged=st.booleans())
    def a_queued_task_runs_through_to_its_pull_request_closing(
        self, pick: int, worker: str, merged: bool
    ) -> None:
        """Any queued task, the whole way at once, so that merges and releases happen often."""
        queued = self.store.tasks.queued(limit=6)
        if not queued:
            return
        task = queued[pick % len(queued)]
        assert task.id is not None
        key = lock_key("acme/app", task.branch)
        if self.store.tasks.claim(task.id, lock_key=key, holder=worker, ttl=TTL) is None:
            return
        if self.store.tasks.finish_run(task.id, TaskState.PR_OPEN, lock_key=key, holder=worker):
            self._close_pull_request(task.id, merged=merged)

    def _close_pull_request(self, task_id: int, *, merged: bool) -> None:
        end = TaskState.DONE if merged else TaskState.ABANDONED
        if not self.store.tasks.transition(task_id, TaskState.PR_OPEN, end):
            return
        ended = self.store.tasks.get(task_id)
        assert ended is not None
        if merged:
            self._release_waiting(ended.issue_number)
        else:
            self._cancel_stranded(ended)

    @rule(issue=ISSUES, name=TASK_NAMES, state=st.sampled_from(list(TaskState)))
    def a_stray_write_is_refused_unless_legal(
        self, issue: int, name: str, state: TaskState
    ) -> None:
        target = state
        for task in self.store.tasks.for_issue("acme/app", issue):
            if task.task_name != name or task.id is None:
                continue
            legal = (TaskState(task.state), target) in TRANSITIONS
            self.tampered.add(issue)
            try:
                self.store.tasks.transition(task.id, TaskState(task.state), target)
            except IllegalTransition:
                assert not legal
            else:
                assert legal
                if target == TaskState.RUNNING:  # a raw write took no lease: put it back
                    self.store.tasks.transition(task.id, TaskState.RUNNING, TaskState.FAILED)

    @invariant()
    def states_are_known_and_one_active_task_per_name(self) -> None:
        active: set[tuple[int, str]] = set()
        for task in self.store.tasks.all("acme/app"):
            state = TaskState(task.state)
            if state in ACTIVE_TASK_STATES:
                assert (task.issue_number, task.task_name) not in active
                active.add((task.issue_number, task.task_name))

    @invariant()
    def a_task_waits_only_while_a_dependency_is_unmerged(self) -> None:
        """Every merge releases what it completes; only a stray write can strand a task."""
        for task in self.store.tasks.all("acme/app"):
            if task.state == TaskState.WAITING and task.issue_number not in self.tampered:
                assert self._unmet(task.issue_number, task.task_name), f"task {task.id} stuck"

    @invariant()
    def a_cancel_never_turns_into_a_retry_and_no_task_runs_past_its_attempts(self) -> None:
        for task in self.store.tasks.all("acme/app"):
            if task.state == TaskState.QUEUED:
                assert not task.cancel_requested, f"task {task.id} requeued after a cancel"
            if task.issue_number not in self.tampered:
                assert task.attempts <= task.max_attempts, f"task {task.id} ran too often"

    @invariant()
    def no_finished_task_holds_a_lock_and_no_branch_has_two(self) -> None:
        running = {t.id: t for t in self.store.tasks.running()}
        branches = [t.branch for t in running.values()]
        assert len(branches) == len(set(branches))
        for lease in self.store.leases.all():
            assert lease.task_id in running, f"lease {lease.key} outlived its run"


# No example database: the test's power must not rest on replaying an earlier failure.
TaskLife.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None, database=None
)
test_task_life = TaskLife.TestCase
