"""Leases: expiring locks held by one holder, taken over only once expired."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from bot.store.database import Database
from bot.store.tables import Lease


def take(
    db: Database, session: Session, *, key: str, task_id: int, holder: str, ttl: float
) -> bool:
    """Insert the lease, or take over an expired one: one conditional write in `session`."""
    now = db.now()
    statement: Any = db.insert(Lease).values(
        key=key, task_id=task_id, holder=holder, expires_at=now + timedelta(seconds=ttl)
    )
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "task_id": statement.excluded.task_id,
            "holder": statement.excluded.holder,
            "expires_at": statement.excluded.expires_at,
        },
        where=col(Lease.expires_at) < now,
    ).returning(col(Lease.key))
    return session.execute(statement).first() is not None


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def take(self, key: str, *, task_id: int, holder: str, ttl: float) -> bool:
        """Take a lock that is free or expired (as the scheduler's claim does, without moving
        the task): for work on a branch after its run ended, such as a rollback."""
        with self._db.write() as session:
            return take(self._db, session, key=key, task_id=task_id, holder=holder, ttl=ttl)

    def renew(self, key: str, *, holder: str, ttl: float) -> bool:
        """Extend a lease this holder still has; False means it was lost and the run must stop."""
        expires = self._db.now() + timedelta(seconds=ttl)
        with self._db.write() as session:
            result = session.execute(
                update(Lease)
                .where(col(Lease.key) == key)
                .where(col(Lease.holder) == holder)
                .values(expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    def release(self, key: str, *, holder: str) -> None:
        with self._db.write() as session:
            session.execute(
                delete(Lease)
                .where(col(Lease.key) == key)
                .where(col(Lease.holder) == holder)
                .execution_options(synchronize_session=False)
            )

    def live_keys(self) -> set[str]:
        query = select(col(Lease.key)).where(col(Lease.expires_at) >= self._db.now())
        with self._db.read() as session:
            return set(session.exec(query))

    def all(self) -> list[Lease]:
        with self._db.read() as session:
            return list(session.exec(select(Lease).order_by(col(Lease.key))).all())

    def drop_expired(self) -> int:
        with self._db.write() as session:
            result = session.execute(
                delete(Lease)
                .where(col(Lease.expires_at) < self._db.now())
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)
