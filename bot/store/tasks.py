"""Tasks: created once per request, moved only by conditional writes that lose races safely.

Every change of state is one transaction that also writes its audit record (when given) and,
when a run ends, releases that run's locks, so no record or lock ever disagrees with a state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.core.errors import IllegalTransition, StoreError
from bot.core.task_states import (
    ACTIVE_TASK_STATES,
    FINISHED_TASK_STATES,
    TaskState,
    can_transition,
)
from bot.store import leases
from bot.store.audit import AuditEntry, append
from bot.store.database import Database
from bot.store.tables import Lease, Task

# States a cancel ends at once; a running task is asked to stop instead.
CANCELLABLE_AT_ONCE = (TaskState.HELD, TaskState.WAITING, TaskState.QUEUED)
CANCEL_RACE_TRIES = 5  # a task that keeps moving under a cancel is re-read this often


@dataclass(frozen=True, kw_only=True)
class NewTask:
    installation_id: int
    repo_full_name: str
    issue_number: int
    is_pull_request: bool
    task_name: str
    branch: str
    triggered_by: str
    trigger_delivery_id: str
    config_sha: str | None
    base_branch: str = "main"
    max_attempts: int = 2
    priority: int = 0
    review_context: str | None = None
    tier: str | None = None  # a model tier chosen by escalation, instead of routing
    escalated: bool = False


@dataclass(frozen=True, kw_only=True)
class Publish:
    """What GitHub should show for the task after a write: its status comment (a view) and its
    `bosun/task` check run. Kept with the state in the same transaction, published after it,
    and published again by the reconcile loop until GitHub shows it."""

    status: dict[str, Any] | None = None
    check: dict[str, Any] | None = None

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.status is not None:
            values |= {"status_view": self.status, "status_revision": Task.status_revision + 1}
        if self.check is not None:
            values |= {"check_view": self.check, "check_revision": Task.check_revision + 1}
        if values:
            values |= {"publish_pending": True, "publish_failures": 0, "publish_not_before": None}
        return values

    def initial(self) -> dict[str, Any]:
        """The same, for a task created with it."""
        values: dict[str, Any] = {}
        if self.status is not None:
            values |= {"status_view": self.status, "status_revision": 1}
        if self.check is not None:
            values |= {"check_view": self.check, "check_revision": 1}
        return values | ({"publish_pending": True} if values else {})


class _Lost(Exception):
    """A conditional write found the row moved on: roll the transaction back."""


class Tasks:
    def __init__(self, db: Database) -> None:
        self._db = db

    # Reads

    def get(self, task_id: int) -> Task | None:
        with self._db.read() as session:
            return session.get(Task, task_id)

    def all(self, repo_full_name: str | None = None) -> list[Task]:
        conditions = [] if repo_full_name is None else [Task.repo_full_name == repo_full_name]
        return self._where(*conditions)

    def active_for_issue(self, repo_full_name: str, issue_number: int) -> list[Task]:
        """An issue's held, waiting, queued and running tasks, oldest first."""
        return self._where(
            Task.repo_full_name == repo_full_name,
            Task.issue_number == issue_number,
            col(Task.state).in_(ACTIVE_TASK_STATES),
        )

    def for_issue(self, repo_full_name: str, issue_number: int) -> list[Task]:
        """Every task an issue or pull request has had, oldest first."""
        return self._where(Task.repo_full_name == repo_full_name, Task.issue_number == issue_number)

    def for_pull(self, repo_full_name: str, pr_number: int) -> list[Task]:
        """Tasks whose pull request is this one: opened by an agent, or a PR's own tasks."""
        return self._where(Task.repo_full_name == repo_full_name, col(Task.pr_number) == pr_number)

    def open_pulls_at(self, repo_full_name: str, head_sha: str) -> list[Task]:
        """Tasks whose pull request is open with `head_sha` as the agent's last push."""
        return self._where(
            Task.repo_full_name == repo_full_name,
            col(Task.state) == TaskState.PR_OPEN,
            col(Task.head_sha) == head_sha,
        )

    def running(self) -> list[Task]:
        return self._where(col(Task.state) == TaskState.RUNNING)

    def orphaned(self) -> list[Task]:
        """Running tasks whose worker no longer holds a live lease: it died or lost it."""
        live = select(Lease.task_id).where(col(Lease.expires_at) >= self._db.now())
        return self._where(col(Task.state) == TaskState.RUNNING, col(Task.id).not_in(live))

    def queued(self, *, limit: int) -> list[Task]:
        """Runnable tasks, highest priority first, then oldest first."""
        with self._db.read() as session:
            query = select(Task).where(col(Task.state) == TaskState.QUEUED, self._due())
            query = query.order_by(col(Task.priority).desc(), col(Task.id)).limit(limit)
            return list(session.exec(query).all())

    def queued_candidates(self, *, limit: int) -> list[tuple[int, str, str]]:
        """(id, repo, branch) of runnable tasks, highest priority first, then oldest first."""
        query = (
            select(col(Task.id), col(Task.repo_full_name), col(Task.branch))
            .where(col(Task.state) == TaskState.QUEUED, self._due())
            .order_by(col(Task.priority).desc(), col(Task.id))
            .limit(limit)
        )
        with self._db.read() as session:
            return [(task_id or 0, repo, branch) for task_id, repo, branch in session.exec(query)]

    # Writes

    def create(
        self,
        new: NewTask,
        *,
        state: TaskState = TaskState.QUEUED,
        audit: AuditEntry | None = None,
        publish: Publish | None = None,
    ) -> Task | None:
        """Queue (or hold) a task unless the same one is already active or this delivery made
        it; None then, and nothing written."""
        now = self._db.now()
        try:
            with self._db.write() as session:
                if self._active(session, new.repo_full_name, new.issue_number, new.task_name):
                    return None
                shown = publish.initial() if publish is not None else {}
                task = Task(**vars(new), **shown, state=state, created_at=now, updated_at=now)
                session.add(task)
                session.flush()
                if audit is not None:
                    append(session, audit.about(task.id), at=now)
                return task
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return None
            raise

    def update(
        self,
        task_id: int,
        *,
        audit: AuditEntry | None = None,
        publish: Publish | None = None,
        **fields: Any,
    ) -> None:
        """Record facts about a task (PR number, comment id, head SHA), or what GitHub should
        show for it; never its state."""
        if "state" in fields:
            raise IllegalTransition("use transition() to change a task's state")
        shown = publish.values() if publish is not None else {}
        with self._db.write() as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(updated_at=self._db.now(), **shown, **fields)
                .execution_options(synchronize_session=False)
            )
            self._audit(session, audit, task_id)

    def transition(
        self,
        task_id: int,
        current: TaskState,
        target: TaskState,
        *,
        audit: AuditEntry | None = None,
        publish: Publish | None = None,
        **fields: Any,
    ) -> bool:
        """Move a task from `current` to `target` if it is still in `current`; one conditional
        write. An illegal transition is a bug and raises; a lost race returns False.

        Leaving `running` releases the task's locks in the same transaction, so no lock ever
        outlives its run, whoever ends it."""
        values = self._state_values(task_id, current, target, fields, publish)
        statement = self._from(task_id, current)
        if (current, target) == (TaskState.RUNNING, TaskState.QUEUED):
            statement = statement.where(col(Task.cancel_requested).is_(False))  # cancel wins
        statement = statement.values(**values)
        with self._db.write() as session:
            if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
                return False
            if current == TaskState.RUNNING:
                session.execute(_leases_of(task_id))
            self._audit(session, audit, task_id)
            return True

    def request_cancel(
        self,
        repo_full_name: str,
        issue_number: int,
        task_name: str,
        *,
        reason: str,
        audit: AuditEntry | None = None,
        publish: Publish | None = None,
    ) -> Task | None:
        """Cancel a held, waiting or queued task at once; ask a running one's worker to stop.

        Returns the task as the cancel left it, or None when there was nothing to cancel.
        The audit record's action says which: `task.cancelled` or `task.cancel_requested`;
        `publish` applies to a task cancelled at once (a running one's worker says the rest).
        Safe to repeat, and a task that moves meanwhile is read again."""
        for _ in range(CANCEL_RACE_TRIES):
            with self._db.read() as session:
                task = self._active(session, repo_full_name, issue_number, task_name)
            if task is None or task.id is None:
                return None
            if task.state in CANCELLABLE_AT_ONCE:
                cancelled = audit.about(task.id, action="task.cancelled") if audit else None
                state = TaskState(task.state)
                if self.transition(
                    task.id,
                    state,
                    TaskState.CANCELLED,
                    audit=cancelled,
                    publish=publish,
                    reason=reason,
                ):
                    return self.get(task.id)
            elif self._ask_to_stop(task.id, reason=reason, audit=audit):
                return self.get(task.id)
        raise StoreError(f"task {task_name} of {repo_full_name}#{issue_number} kept moving")

    def claim(self, task_id: int, *, lock_key: str, holder: str, ttl: float) -> Task | None:
        """Take the task's branch lock and mark it running, in one transaction; None if the
        lock is held or the task is no longer queued."""
        now = self._db.now()
        claim = self._from(task_id, TaskState.QUEUED).values(
            state=TaskState.RUNNING.value,
            attempts=Task.attempts + 1,
            worker_id=holder,
            started_at=now,
            updated_at=now,
            cancel_requested=False,
        )
        try:
            with self._db.write() as session:
                taken = leases.take(
                    self._db, session, key=lock_key, task_id=task_id, holder=holder, ttl=ttl
                )
                if not taken or session.execute(claim).rowcount != 1:  # type: ignore[attr-defined]
                    raise _Lost
                return session.get(Task, task_id, populate_existing=True)
        except _Lost:
            return None

    def finish_run(
        self,
        task_id: int,
        target: TaskState,
        *,
        lock_key: str,
        holder: str,
        audit: AuditEntry | None = None,
        publish: Publish | None = None,
        **fields: Any,
    ) -> bool:
        """A worker ends its own run: RUNNING -> `target` and its lock released, in one
        transaction; False when the run is no longer this worker's (its lease was lost)."""
        own_lease = delete(Lease).where(col(Lease.key) == lock_key, col(Lease.holder) == holder)
        return self._end_running(
            task_id,
            target,
            fields,
            [col(Task.worker_id) == holder],
            audit=audit,
            publish=publish,
            release=own_lease,
        )

    def end_lost_run(
        self,
        task_id: int,
        target: TaskState,
        *,
        worker_id: str | None,
        attempt: int,
        audit: AuditEntry | None = None,
        publish: Publish | None = None,
        **fields: Any,
    ) -> bool:
        """End a run whose worker was lost, if it is still that very run: running under the
        same worker and attempt, with no live lease. Replicas that noticed the same loss race
        here, and only one wins; a run started since is never touched."""
        live = select(Lease.task_id).where(col(Lease.expires_at) >= self._db.now())
        still_that_run = [
            col(Task.worker_id) == worker_id,
            col(Task.attempts) == attempt,
            col(Task.id).not_in(live),
        ]
        return self._end_running(
            task_id,
            target,
            fields,
            still_that_run,
            audit=audit,
            publish=publish,
            release_if_ended=True,
        )

    # Publications

    def unpublished(self, *, limit: int, settled_before: datetime) -> list[Task]:
        """Tasks whose status comment or check run GitHub does not show yet, due for another
        try: their last change is older than `settled_before` (the in-line publish had its
        chance) and any backoff after a failed try is over."""
        now = self._db.now()
        return self._where(
            col(Task.publish_pending).is_(True),
            col(Task.updated_at) <= settled_before,
            or_(col(Task.publish_not_before).is_(None), col(Task.publish_not_before) <= now),
            limit=limit,
        )

    def mark_published(
        self, task_id: int, *, status_revision: int | None, check_revision: int | None
    ) -> bool:
        """GitHub shows these revisions now; False when a newer one was written meanwhile,
        which then is what to publish next."""
        with self._db.write() as session:
            current = True
            for synced, revision, shown in (
                (Task.status_synced, Task.status_revision, status_revision),
                (Task.check_synced, Task.check_revision, check_revision),
            ):
                if shown is None:
                    continue
                moved = session.execute(
                    update(Task)
                    .where(col(Task.id) == task_id, col(revision) == shown)
                    .values({synced: shown})
                    .execution_options(synchronize_session=False)
                )
                current = current and moved.rowcount == 1  # type: ignore[attr-defined]
            session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(
                    publish_pending=or_(
                        col(Task.status_synced) < col(Task.status_revision),
                        col(Task.check_synced) < col(Task.check_revision),
                    ),
                    publish_failures=0,
                    publish_not_before=None,
                )
                .execution_options(synchronize_session=False)
            )
            return current

    def publish_failed(self, task_id: int, *, retry_in: timedelta) -> None:
        """GitHub refused or failed a publication: try again after `retry_in`."""
        with self._db.write() as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(
                    publish_failures=Task.publish_failures + 1,
                    publish_not_before=self._db.now() + retry_in,
                )
                .execution_options(synchronize_session=False)
            )

    # Plumbing

    def _end_running(
        self,
        task_id: int,
        target: TaskState,
        fields: dict[str, Any],
        conditions: Sequence[Any],
        *,
        audit: AuditEntry | None,
        publish: Publish | None,
        release: Any = None,
        release_if_ended: bool = False,
    ) -> bool:
        """RUNNING -> `target` where `conditions` hold, and the run's locks released, in one
        transaction. A cancel asked for meanwhile is never turned into a retry."""
        values = self._state_values(task_id, TaskState.RUNNING, target, fields, publish)
        statement = self._from(task_id, TaskState.RUNNING).where(*conditions)
        if target == TaskState.QUEUED:
            statement = statement.where(col(Task.cancel_requested).is_(False))
        with self._db.write() as session:
            ended: bool = session.execute(statement.values(**values)).rowcount == 1  # type: ignore[attr-defined]
            if release is not None:
                session.execute(release.execution_options(synchronize_session=False))
            if ended and release_if_ended:
                session.execute(_leases_of(task_id))
            if ended:
                self._audit(session, audit, task_id)
            return ended

    def _ask_to_stop(self, task_id: int, *, reason: str, audit: AuditEntry | None) -> bool:
        statement = self._from(task_id, TaskState.RUNNING).values(
            cancel_requested=True, reason=reason, updated_at=self._db.now()
        )
        with self._db.write() as session:
            if session.execute(statement).rowcount != 1:  # type: ignore[attr-defined]
                return False
            asked = audit.about(task_id, action="task.cancel_requested") if audit else None
            self._audit(session, asked, task_id)
            return True

    def _audit(self, session: Session, audit: AuditEntry | None, task_id: int) -> None:
        if audit is not None:
            append(session, audit.about(task_id), at=self._db.now())

    def _state_values(
        self,
        task_id: int,
        current: TaskState,
        target: TaskState,
        fields: dict[str, Any],
        publish: Publish | None,
    ) -> dict[str, Any]:
        if not can_transition(current, target):
            raise IllegalTransition(f"task {task_id}: {current} -> {target} is not allowed")
        now = self._db.now()
        shown = publish.values() if publish is not None else {}
        values: dict[str, Any] = {"state": target.value, "updated_at": now, **shown, **fields}
        if target in FINISHED_TASK_STATES:
            values.setdefault("finished_at", now)
        return values

    @staticmethod
    def _from(task_id: int, state: TaskState) -> Any:
        """UPDATE of the task while it is still in `state`: the guard every move shares."""
        return (
            update(Task)
            .where(col(Task.id) == task_id, col(Task.state) == state.value)
            .execution_options(synchronize_session=False)
        )

    def _due(self) -> Any:
        """Queued tasks whose retry backoff is over (or that never failed)."""
        return or_(col(Task.not_before).is_(None), col(Task.not_before) <= self._db.now())

    def _where(self, *conditions: Any, limit: int | None = None) -> list[Task]:
        with self._db.read() as session:
            query = select(Task).where(*conditions).order_by(col(Task.id))
            return list(session.exec(query.limit(limit)).all())

    @staticmethod
    def _active(
        session: Session, repo_full_name: str, issue_number: int, task_name: str
    ) -> Task | None:
        return session.exec(
            select(Task)
            .where(Task.repo_full_name == repo_full_name)
            .where(Task.issue_number == issue_number)
            .where(Task.task_name == task_name)
            .where(col(Task.state).in_(ACTIVE_TASK_STATES))
        ).first()


def _leases_of(task_id: int) -> Any:
    return (
        delete(Lease)
        .where(col(Lease.task_id) == task_id)
        .execution_options(synchronize_session=False)
    )
