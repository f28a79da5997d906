"""`Store`: every read and write Bosun makes, each one short transaction; the only session owner."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from bot.core.clock import Clock
from bot.core.errors import IllegalTransition, StoreError
from bot.core.task_states import ACTIVE_TASK_STATES, FINISHED_TASK_STATES, TaskState, can_transition
from bot.store import migrate
from bot.store.engine import make_engine
from bot.store.tables import (
    AuditRecord,
    Delivery,
    Installation,
    InstallationRepository,
    Lease,
    ModelCallRecord,
    RepoConfigRecord,
    Task,
)


@dataclass(frozen=True, kw_only=True)
class NewDelivery:
    """A verified webhook delivery about to be stored."""

    delivery_id: str
    event: str
    action: str | None
    installation_id: int | None
    repo_full_name: str | None
    body: bytes


@dataclass(frozen=True, kw_only=True)
class StoredDelivery:
    id: int
    delivery_id: str
    event: str
    action: str | None
    body: bytes
    attempts: int


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


_TASK = Task.__table__  # type: ignore[attr-defined]
_LEASE = Lease.__table__  # type: ignore[attr-defined]
# Hot statements, built once: the scheduler and workers run them for every task.
_CLAIM = (
    update(_TASK)
    .where(_TASK.c.id == bindparam("task_id"))
    .where(_TASK.c.state == TaskState.QUEUED.value)
    .values(
        state=TaskState.RUNNING.value,
        attempts=_TASK.c.attempts + 1,
        worker_id=bindparam("holder"),
        started_at=bindparam("now"),
        updated_at=bindparam("now"),
        cancel_requested=False,
    )
)
_TASK_BY_ID = sa_select(_TASK).where(_TASK.c.id == bindparam("task_id"))


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Bosun stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Store:
    """Intention-revealing reads and writes over SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        # SQLite has one writer at a time. Waiting writers sleep-poll for its lock, and an
        # ORM session that reads, then writes, fails at once if another writer slipped in
        # between; so this process's writers take turns on a lock of their own. Deliveries
        # stay off it: intake's group commit must not wait behind a scheduler pass.
        self._turns: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    def connect(cls, url: str, *, clock: Clock) -> Store:
        return cls(make_engine(url), clock=clock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        with self._translated():
            migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with (
            self._translated(),
            self._turns,
            Session(self.engine, expire_on_commit=False) as session,
        ):
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """One write transaction on a Core connection, in turn with this process's writers."""
        with self._translated(), self._turns, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _delivery_writing(self) -> Iterator[Connection]:
        """Intake's write transactions: they start by writing and wait on SQLite alone."""
        with self._translated(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}: {exc}") from exc

    # -- deliveries -------------------------------------------------------------------

    def insert_deliveries(self, batch: Sequence[NewDelivery]) -> set[str]:
        """Store a batch in one transaction; return the delivery ids that were new."""
        if not batch:
            return set()
        now = self.clock.now()
        rows = [
            {
                "delivery_id": item.delivery_id,
                "event": item.event,
                "action": item.action,
                "installation_id": item.installation_id,
                "repo_full_name": item.repo_full_name,
                "body": item.body,
                "received_at": now,
                "attempts": 0,
            }
            for item in batch
        ]
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = (
            insert(Delivery)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(col(Delivery.delivery_id))
        )
        with self._delivery_writing() as connection:
            result = connection.execute(statement, rows)
            return {row[0] for row in result.all()}

    def unhandled_deliveries(self, *, limit: int = 100) -> list[StoredDelivery]:
        # Plain columns, not ORM objects: this runs for every delivery Bosun receives.
        query = (
            sa_select(
                col(Delivery.id),
                col(Delivery.delivery_id),
                col(Delivery.event),
                col(Delivery.action),
                col(Delivery.body),
                col(Delivery.attempts),
            )
            .where(col(Delivery.handled_at).is_(None))
            .order_by(col(Delivery.id))
            .limit(limit)
        )
        with self._translated(), self.engine.connect() as connection:
            return [
                StoredDelivery(
                    id=row.id,
                    delivery_id=row.delivery_id,
                    event=row.event,
                    action=row.action,
                    body=row.body,
                    attempts=row.attempts,
                )
                for row in connection.execute(query)
            ]

    def mark_deliveries_handled(self, outcomes: Sequence[tuple[int, str, str | None]]) -> None:
        """Record (row id, outcome, error) for deliveries that need no further handling."""
        if not outcomes:
            return
        statement = (
            update(Delivery)
            .where(col(Delivery.id) == bindparam("row_id"))
            .values(
                handled_at=bindparam("handled_at"),
                outcome=bindparam("outcome"),
                error=bindparam("error"),
                attempts=Delivery.attempts + 1,
            )
        )
        now = self.clock.now()
        rows = [
            {"row_id": row_id, "handled_at": now, "outcome": outcome, "error": error}
            for row_id, outcome, error in outcomes
        ]
        with self._delivery_writing() as connection:
            connection.execute(statement, rows)

    def record_delivery_attempt(self, delivery_row_id: int, *, error: str) -> None:
        """A transient failure: keep the delivery unhandled, count the attempt."""
        with self._session() as session:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == delivery_row_id)
                .values(error=error, attempts=Delivery.attempts + 1)
            )
            session.commit()

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self._session() as session:
            return session.exec(select(Delivery).where(Delivery.delivery_id == delivery_id)).first()

    def count_deliveries(self) -> int:
        with self._session() as session:
            return session.exec(select(func.count()).select_from(Delivery)).one()

    # -- tasks ------------------------------------------------------------------------

    def create_task(self, new: NewTask, *, state: TaskState = TaskState.QUEUED) -> Task | None:
        """Queue (or hold) a task unless the same one is already active or this delivery made it."""
        now = self.clock.now()
        with self._session() as session:
            if self._active_task(session, new.repo_full_name, new.issue_number, new.task_name):
                return None
            task = Task(**vars(new), state=state, created_at=now, updated_at=now)
            session.add(task)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return None
            return task

    def active_tasks(self, repo_full_name: str, issue_number: int) -> list[Task]:
        """An issue's held, waiting, queued and running tasks, oldest first."""
        return self._tasks_where(
            Task.repo_full_name == repo_full_name,
            Task.issue_number == issue_number,
            col(Task.state).in_(ACTIVE_TASK_STATES),
        )

    def tasks_for_issue(self, repo_full_name: str, issue_number: int) -> list[Task]:
        """Every task an issue or pull request has had, oldest first."""
        return self._tasks_where(
            Task.repo_full_name == repo_full_name, Task.issue_number == issue_number
        )

    def tasks_for_pull(self, repo_full_name: str, pr_number: int) -> list[Task]:
        """Tasks whose pull request is this one: opened by an agent, or a PR's own tasks."""
        return self._tasks_where(
            Task.repo_full_name == repo_full_name, col(Task.pr_number) == pr_number
        )

    def open_pull_tasks_at(self, repo_full_name: str, head_sha: str) -> list[Task]:
        """Tasks whose pull request is open with `head_sha` as the agent's last push."""
        return self._tasks_where(
            Task.repo_full_name == repo_full_name,
            col(Task.state) == TaskState.PR_OPEN,
            col(Task.head_sha) == head_sha,
        )

    def _tasks_where(self, *conditions: Any) -> list[Task]:
        with self._session() as session:
            query = select(Task).where(*conditions).order_by(col(Task.id))
            return list(session.exec(query).all())

    def tasks(self, repo_full_name: str | None = None) -> list[Task]:
        with self._session() as session:
            query = select(Task).order_by(col(Task.id))
            if repo_full_name is not None:
                query = query.where(Task.repo_full_name == repo_full_name)
            return list(session.exec(query).all())

    def request_cancel(
        self, repo_full_name: str, issue_number: int, task_name: str, *, reason: str
    ) -> Task | None:
        """Cancel a queued task at once; ask a running one's worker to stop. Safe to repeat."""
        with self._session() as session:
            task = self._active_task(session, repo_full_name, issue_number, task_name)
        if task is None or task.id is None:
            return None
        if task.state in (TaskState.HELD, TaskState.WAITING, TaskState.QUEUED):
            if self.transition(task.id, TaskState(task.state), TaskState.CANCELLED, reason=reason):
                return self.task(task.id)
            return self.request_cancel(repo_full_name, issue_number, task_name, reason=reason)
        with self._session() as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == task.id)
                .where(col(Task.state) == TaskState.RUNNING)
                .values(cancel_requested=True, reason=reason, updated_at=self.clock.now())
            )
            session.commit()
        return self.task(task.id)

    def transition(
        self, task_id: int, current: TaskState, target: TaskState, **fields: Any
    ) -> bool:
        """Move a task from `current` to `target` if it is still in `current`; one conditional
        write. An illegal transition is a bug and raises; a lost race returns False.

        Leaving `running` releases the task's locks in the same transaction, so no lock ever
        outlives its run, whoever ends it."""
        values = self._state_values(task_id, current, target, fields)
        with self._writing() as connection:
            result = connection.execute(
                update(_TASK)
                .where(_TASK.c.id == task_id)
                .where(_TASK.c.state == current.value)
                .values(**values)
            )
            if result.rowcount == 1 and current == TaskState.RUNNING:
                connection.execute(delete(_LEASE).where(_LEASE.c.task_id == task_id))
            return bool(result.rowcount == 1)

    def finish_run(
        self,
        task_id: int,
        target: TaskState,
        *,
        lock_key: str,
        holder: str,
        **fields: Any,
    ) -> bool:
        """A worker ends its own run: RUNNING -> `target` and its lock released, in one
        transaction; False when the run is no longer this worker's (its lease was lost)."""
        own_lease = delete(_LEASE).where(_LEASE.c.key == lock_key).where(_LEASE.c.holder == holder)
        return self._end_running(
            task_id, target, fields, [_TASK.c.worker_id == holder], release=own_lease
        )

    def end_lost_run(
        self, task_id: int, target: TaskState, *, worker_id: str | None, attempt: int, **fields: Any
    ) -> bool:
        """End a run whose worker was lost, if it is still that very run: running under the
        same worker and attempt, with no live lease. Replicas that noticed the same loss race
        here, and only one wins; a run started since is never touched."""
        live = sa_select(_LEASE.c.task_id).where(_LEASE.c.expires_at >= self.clock.now())
        still_that_run = [
            _TASK.c.worker_id == worker_id,
            _TASK.c.attempts == attempt,
            _TASK.c.id.not_in(live),
        ]
        leases = delete(_LEASE).where(_LEASE.c.task_id == task_id)
        return self._end_running(task_id, target, fields, still_that_run, release_if_ended=leases)

    def _end_running(
        self,
        task_id: int,
        target: TaskState,
        fields: dict[str, Any],
        conditions: list[Any],
        *,
        release: Any = None,
        release_if_ended: Any = None,
    ) -> bool:
        """RUNNING -> `target` where `conditions` hold, and the run's locks released, in one
        transaction. A cancel asked for meanwhile is never turned into a retry."""
        values = self._state_values(task_id, TaskState.RUNNING, target, fields)
        statement = (
            update(_TASK)
            .where(_TASK.c.id == task_id)
            .where(_TASK.c.state == TaskState.RUNNING.value)
            .where(*conditions)
        )
        if target == TaskState.QUEUED:
            statement = statement.where(_TASK.c.cancel_requested.is_(False))
        with self._writing() as connection:
            ended = connection.execute(statement.values(**values)).rowcount == 1
            if release is not None:
                connection.execute(release)
            if ended and release_if_ended is not None:
                connection.execute(release_if_ended)
            return bool(ended)

    def take_lock(self, key: str, *, task_id: int, holder: str, ttl: float) -> bool:
        """Take a lock that is free or expired (as the scheduler's claim does, without moving
        the task): for work on a branch after its run ended, such as a rollback."""
        now = self.clock.now()
        lease = {"key": key, "task_id": task_id, "holder": holder}
        lease["expires_at"] = now + timedelta(seconds=ttl)
        with self._writing() as connection:
            taken = connection.execute(self._take_lease_statement, {**lease, "now": now})
            return taken.first() is not None

    def _state_values(
        self, task_id: int, current: TaskState, target: TaskState, fields: dict[str, Any]
    ) -> dict[str, Any]:
        if not can_transition(current, target):
            raise IllegalTransition(f"task {task_id}: {current} -> {target} is not allowed")
        now = self.clock.now()
        values: dict[str, Any] = {"state": target.value, "updated_at": now, **fields}
        if target in FINISHED_TASK_STATES:
            values.setdefault("finished_at", now)
        return values

    def update_task(self, task_id: int, **fields: Any) -> None:
        """Record facts about a task (PR number, comment id, head SHA); never its state."""
        if "state" in fields:
            raise IllegalTransition("use transition() to change a task's state")
        with self._session() as session:
            session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(updated_at=self.clock.now(), **fields)
            )
            session.commit()

    def task(self, task_id: int) -> Task | None:
        with self._session() as session:
            return session.get(Task, task_id)

    def queued_tasks(self, *, limit: int) -> list[Task]:
        """Runnable candidates, highest priority first, then oldest first."""
        with self._session() as session:
            return list(
                session.exec(
                    select(Task)
                    .where(col(Task.state) == TaskState.QUEUED)
                    .where(self._due())
                    .order_by(col(Task.priority).desc(), col(Task.id))
                    .limit(limit)
                ).all()
            )

    def queued_candidates(self, *, limit: int) -> list[tuple[int, str, str]]:
        """(id, repo, branch) of runnable tasks, highest priority first, then oldest first."""
        query = (
            sa_select(col(Task.id), col(Task.repo_full_name), col(Task.branch))
            .where(col(Task.state) == TaskState.QUEUED)
            .where(self._due())
            .order_by(col(Task.priority).desc(), col(Task.id))
            .limit(limit)
        )
        with self._translated(), self.engine.connect() as connection:
            return [(row[0] or 0, row[1], row[2]) for row in connection.execute(query)]

    def _due(self) -> Any:
        """Queued tasks whose retry backoff is over (or that never failed)."""
        return or_(col(Task.not_before).is_(None), col(Task.not_before) <= self.clock.now())

    def running_tasks(self) -> list[Task]:
        with self._session() as session:
            return list(
                session.exec(
                    select(Task).where(col(Task.state) == TaskState.RUNNING).order_by(col(Task.id))
                ).all()
            )

    # -- leases -----------------------------------------------------------------------

    def claim_task(self, task_id: int, *, lock_key: str, holder: str, ttl: float) -> Task | None:
        """Take the task's branch lock and mark it running, in one transaction; None if the
        lock is held or the task is no longer queued."""
        now = self.clock.now()
        lease = {"key": lock_key, "task_id": task_id, "holder": holder}
        lease["expires_at"] = now + timedelta(seconds=ttl)
        with (
            self._translated(),
            self._turns,
            self.engine.connect() as connection,
            connection.begin() as tx,
        ):
            taken = connection.execute(self._take_lease_statement, {**lease, "now": now})
            if taken.first() is None:
                tx.rollback()
                return None
            moved = connection.execute(_CLAIM, {"task_id": task_id, "holder": holder, "now": now})
            if moved.rowcount != 1:
                tx.rollback()
                return None
            row = connection.execute(_TASK_BY_ID, {"task_id": task_id}).one()
            tx.commit()
        return Task(**row._mapping)

    @property
    def _take_lease_statement(self) -> Any:
        """Insert the lease, or take over an expired one: one conditional write."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(_LEASE).values(
            key=bindparam("key"),
            task_id=bindparam("task_id"),
            holder=bindparam("holder"),
            expires_at=bindparam("expires_at"),
        )
        return statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "task_id": statement.excluded.task_id,
                "holder": statement.excluded.holder,
                "expires_at": statement.excluded.expires_at,
            },
            where=_LEASE.c.expires_at < bindparam("now"),
        ).returning(_LEASE.c.key)

    def renew_lease(self, key: str, *, holder: str, ttl: float) -> bool:
        """Extend a lease this holder still has; False means it was lost and the run must stop."""
        expires = self.clock.now() + timedelta(seconds=ttl)
        with self._session() as session:
            result = session.execute(
                update(Lease)
                .where(col(Lease.key) == key)
                .where(col(Lease.holder) == holder)
                .values(expires_at=expires)
            )
            session.commit()
            return bool(getattr(result, "rowcount", 0) == 1)

    def release_lease(self, key: str, *, holder: str) -> None:
        with self._session() as session:
            session.execute(
                delete(Lease).where(col(Lease.key) == key).where(col(Lease.holder) == holder)
            )
            session.commit()

    def live_lease_keys(self) -> set[str]:
        query = sa_select(col(Lease.key)).where(col(Lease.expires_at) >= self.clock.now())
        with self._translated(), self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def leases(self) -> list[Lease]:
        with self._session() as session:
            return list(session.exec(select(Lease).order_by(col(Lease.key))).all())

    def orphaned_running_tasks(self) -> list[Task]:
        """Running tasks whose worker no longer holds a live lease: it died or lost it."""
        now = self.clock.now()
        with self._session() as session:
            live = select(Lease.task_id).where(col(Lease.expires_at) >= now)
            return list(
                session.exec(
                    select(Task)
                    .where(col(Task.state) == TaskState.RUNNING)
                    .where(col(Task.id).not_in(live))
                    .order_by(col(Task.id))
                ).all()
            )

    def drop_expired_leases(self) -> int:
        now = self.clock.now()
        with self._session() as session:
            result = session.execute(delete(Lease).where(col(Lease.expires_at) < now))
            session.commit()
            return int(getattr(result, "rowcount", 0) or 0)

    # -- model calls ------------------------------------------------------------------

    def record_model_call(
        self,
        *,
        task_id: int,
        attempt: int,
        model: str,
        tokens_in: int,
        tokens_out: int,
        cost_usd: float,
        cache_hit: bool,
        latency_ms: float,
    ) -> None:
        """Keep one model call and add it to the task's totals, in one transaction."""
        with self._session() as session:
            session.add(
                ModelCallRecord(
                    task_id=task_id,
                    attempt=attempt,
                    at=self.clock.now(),
                    model=model,
                    tokens_in=tokens_in,
                    tokens_out=tokens_out,
                    cost_usd=cost_usd,
                    cache_hit=cache_hit,
                    latency_ms=latency_ms,
                )
            )
            session.execute(
                update(Task)
                .where(col(Task.id) == task_id)
                .values(
                    cost_usd=Task.cost_usd + cost_usd,
                    tokens_in=Task.tokens_in + tokens_in,
                    tokens_out=Task.tokens_out + tokens_out,
                )
            )
            session.commit()

    def model_calls(self, task_id: int) -> list[ModelCallRecord]:
        with self._session() as session:
            return list(
                session.exec(
                    select(ModelCallRecord)
                    .where(ModelCallRecord.task_id == task_id)
                    .order_by(col(ModelCallRecord.id))
                ).all()
            )

    @staticmethod
    def _active_task(
        session: Session, repo_full_name: str, issue_number: int, task_name: str
    ) -> Task | None:
        return session.exec(
            select(Task)
            .where(Task.repo_full_name == repo_full_name)
            .where(Task.issue_number == issue_number)
            .where(Task.task_name == task_name)
            .where(col(Task.state).in_(ACTIVE_TASK_STATES))
        ).first()

    # -- installations ----------------------------------------------------------------

    def record_installation(
        self, *, installation_id: int, account_login: str, account_type: str, status: str
    ) -> None:
        with self._session() as session:
            row = session.get(Installation, installation_id)
            if row is None:
                row = Installation(
                    id=installation_id,
                    account_login=account_login,
                    account_type=account_type,
                    status=status,
                    updated_at=self.clock.now(),
                )
            else:
                row.account_login, row.status = account_login, status
                row.updated_at = self.clock.now()
            session.add(row)
            session.commit()

    def installation(self, installation_id: int) -> Installation | None:
        with self._session() as session:
            return session.get(Installation, installation_id)

    def set_installation_repositories(
        self, installation_id: int, *, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        now = self.clock.now()
        with self._session() as session:
            for name in removed:
                row = session.get(InstallationRepository, (installation_id, name))
                if row is not None:
                    session.delete(row)
            for name in added:
                if session.get(InstallationRepository, (installation_id, name)) is None:
                    session.add(
                        InstallationRepository(
                            installation_id=installation_id, repo_full_name=name, added_at=now
                        )
                    )
            session.commit()

    def installation_repositories(self, installation_id: int) -> list[str]:
        with self._session() as session:
            rows = session.exec(
                select(InstallationRepository.repo_full_name)
                .where(InstallationRepository.installation_id == installation_id)
                .order_by(col(InstallationRepository.repo_full_name))
            ).all()
            return list(rows)

    # -- audit ------------------------------------------------------------------------

    def audit(
        self,
        *,
        actor: str,
        action: str,
        repo_full_name: str | None = None,
        delivery_id: str | None = None,
        config_sha: str | None = None,
        task_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Append one record; returns its id, which check runs and comments cite."""
        with self._session() as session:
            record = AuditRecord(
                at=self.clock.now(),
                actor=actor,
                action=action,
                repo_full_name=repo_full_name,
                delivery_id=delivery_id,
                config_sha=config_sha,
                task_id=task_id,
                detail=detail or {},
            )
            session.add(record)
            session.commit()
            return record.id or 0

    def audit_records(self, *, repo_full_name: str | None = None) -> list[AuditRecord]:
        with self._session() as session:
            query = select(AuditRecord).order_by(col(AuditRecord.id))
            if repo_full_name is not None:
                query = query.where(AuditRecord.repo_full_name == repo_full_name)
            return list(session.exec(query).all())

    def last_audit(self, task_id: int, action: str) -> AuditRecord | None:
        """The task's latest audit record of `action`, if it has one."""
        with self._session() as session:
            return session.exec(
                select(AuditRecord)
                .where(AuditRecord.task_id == task_id)
                .where(AuditRecord.action == action)
                .order_by(col(AuditRecord.id).desc())
            ).first()

    # -- repository config ------------------------------------------------------------

    def remember_good_config(self, repo_full_name: str, sha: str) -> None:
        """Record `sha` as the repository's last good config commit (one upsert)."""
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = insert(RepoConfigRecord).values(
            repo_full_name=repo_full_name, good_sha=sha, accepted_at=self.clock.now()
        )
        statement = statement.on_conflict_do_update(
            index_elements=["repo_full_name"],
            set_={
                "good_sha": statement.excluded.good_sha,
                "accepted_at": statement.excluded.accepted_at,
            },
        )
        with self._writing() as connection:
            connection.execute(statement)

    def last_good_config(self, repo_full_name: str) -> str | None:
        """The commit of the repository's last good config, if one was ever accepted."""
        with self._session() as session:
            record = session.get(RepoConfigRecord, repo_full_name)
            return None if record is None else record.good_sha
