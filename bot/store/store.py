"""`Store`: every read and write Bosun makes, each one short transaction; the only session owner."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from bot.clock import Clock
from bot.errors import StoreError
from bot.store import migrate
from bot.store.engine import make_engine
from bot.store.tables import (
    ACTIVE_TASK_STATES,
    AuditRecord,
    Delivery,
    Installation,
    InstallationRepository,
    Task,
    TaskState,
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


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Bosun stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Store:
    """Intention-revealing reads and writes over SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

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
        with self._translated(), Session(self.engine, expire_on_commit=False) as session:
            yield session

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
        with self._translated(), self.engine.begin() as connection:
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
        with self._translated(), self.engine.begin() as connection:
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

    def create_task(self, new: NewTask) -> Task | None:
        """Queue a task unless the same one is already active or this delivery made it."""
        now = self.clock.now()
        with self._session() as session:
            if self._active_task(session, new.repo_full_name, new.issue_number, new.task_name):
                return None
            task = Task(**vars(new), state=TaskState.QUEUED, created_at=now, updated_at=now)
            session.add(task)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return None
            return task

    def active_tasks(self, repo_full_name: str, issue_number: int) -> list[Task]:
        with self._session() as session:
            return list(
                session.exec(
                    select(Task)
                    .where(Task.repo_full_name == repo_full_name)
                    .where(Task.issue_number == issue_number)
                    .where(col(Task.state).in_(ACTIVE_TASK_STATES))
                    .order_by(col(Task.id))
                ).all()
            )

    def tasks(self, repo_full_name: str | None = None) -> list[Task]:
        with self._session() as session:
            query = select(Task).order_by(col(Task.id))
            if repo_full_name is not None:
                query = query.where(Task.repo_full_name == repo_full_name)
            return list(session.exec(query).all())

    def cancel_queued_task(
        self, repo_full_name: str, issue_number: int, task_name: str, *, reason: str
    ) -> Task | None:
        """Cancel the queued task of that name, if any; a conditional write, safe to repeat."""
        with self._session() as session:
            task = self._active_task(session, repo_full_name, issue_number, task_name)
            if task is None or task.state != TaskState.QUEUED:
                return None
            changed = session.execute(
                update(Task)
                .where(col(Task.id) == task.id)
                .where(col(Task.state) == TaskState.QUEUED)
                .values(state=TaskState.CANCELLED, reason=reason, updated_at=self.clock.now())
            )
            session.commit()
            if getattr(changed, "rowcount", 0) != 1:
                return None
            session.refresh(task)
            return task

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
    ) -> None:
        with self._session() as session:
            session.add(
                AuditRecord(
                    at=self.clock.now(),
                    actor=actor,
                    action=action,
                    repo_full_name=repo_full_name,
                    delivery_id=delivery_id,
                    config_sha=config_sha,
                    task_id=task_id,
                    detail=detail or {},
                )
            )
            session.commit()

    def audit_records(self, *, repo_full_name: str | None = None) -> list[AuditRecord]:
        with self._session() as session:
            query = select(AuditRecord).order_by(col(AuditRecord.id))
            if repo_full_name is not None:
                query = query.where(AuditRecord.repo_full_name == repo_full_name)
            return list(session.exec(query).all())
