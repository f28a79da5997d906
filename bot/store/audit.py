"""Audit records: appended in the same transaction as the change they record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from bot.store.database import Database
from bot.store.tables import AuditRecord


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """Who did what, where, under which delivery and config; `task_id` is filled in by the
    task write that carries the entry."""

    actor: str
    action: str
    repo_full_name: str | None = None
    delivery_id: str | None = None
    config_sha: str | None = None
    task_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def about(self, task_id: int | None, **changes: Any) -> AuditEntry:
        return dataclasses.replace(self, task_id=task_id, **changes)


def append(session: Session, entry: AuditEntry, *, at: Any) -> AuditRecord:
    """Add the record to the session's transaction; its id is known once this returns."""
    record = AuditRecord(
        at=at,
        actor=entry.actor,
        action=entry.action,
        repo_full_name=entry.repo_full_name,
        delivery_id=entry.delivery_id,
        config_sha=entry.config_sha,
        task_id=entry.task_id,
        detail=dict(entry.detail),
    )
    session.add(record)
    session.flush()
    return record


class AuditLog:
    """The append-only log: written with the changes it records, read by people and tests."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, entry: AuditEntry) -> int:
        """Append one record on its own; returns its id, which check runs and comments cite."""
        with self._db.write() as session:
            return append(session, entry, at=self._db.now()).id or 0

    def records(self, *, repo_full_name: str | None = None) -> list[AuditRecord]:
        with self._db.read() as session:
            query = select(AuditRecord).order_by(col(AuditRecord.id))
            if repo_full_name is not None:
                query = query.where(AuditRecord.repo_full_name == repo_full_name)
            return list(session.exec(query).all())

    def for_task(self, task_id: int) -> list[AuditRecord]:
        with self._db.read() as session:
            query = select(AuditRecord).where(AuditRecord.task_id == task_id)
            return list(session.exec(query.order_by(col(AuditRecord.id))).all())

    def last(self, task_id: int, action: str) -> AuditRecord | None:
        """The task's latest record of `action`, if it has one."""
        with self._db.read() as session:
            return session.exec(
                select(AuditRecord)
                .where(AuditRecord.task_id == task_id)
                .where(AuditRecord.action == action)
                .order_by(col(AuditRecord.id).desc())
            ).first()
