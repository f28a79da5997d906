"""Webhook deliveries: stored before the ack, handled after it, each one once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as columns
from sqlmodel import col, select

from bot.store.database import Database
from bot.store.tables import Delivery


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


class Deliveries:
    def __init__(self, db: Database) -> None:
        self._db = db

    def insert_many(self, batch: Sequence[NewDelivery]) -> set[str]:
        """Store a batch in one transaction; return the delivery ids that were new."""
        if not batch:
            return set()
        now = self._db.now()
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
        statement = (
            self._db.insert(Delivery)
            .on_conflict_do_nothing(index_elements=["delivery_id"])
            .returning(col(Delivery.delivery_id))
        )
        with self._db.write(in_turn=False) as session:
            return set(session.execute(statement, rows).scalars())

    def unhandled(self, *, limit: int = 100) -> list[StoredDelivery]:
        # Plain columns, not table objects: this runs for every delivery Bosun receives.
        query = (
            columns(  # sqlmodel's select types four columns at most
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
        with self._db.read() as session:
            return [
                StoredDelivery(
                    id=row_id or 0,
                    delivery_id=delivery_id,
                    event=event,
                    action=action,
                    body=body,
                    attempts=attempts,
                )
                for row_id, delivery_id, event, action, body, attempts in session.execute(query)
            ]

    def mark_handled(self, outcomes: Sequence[tuple[int, str, str | None]]) -> None:
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
            .execution_options(synchronize_session=False)
        )
        now = self._db.now()
        rows = [
            {"row_id": row_id, "handled_at": now, "outcome": outcome, "error": error}
            for row_id, outcome, error in outcomes
        ]
        with self._db.write(in_turn=False) as session:
            session.connection().execute(statement, rows)

    def record_attempt(self, row_id: int, *, error: str) -> None:
        """A transient failure: keep the delivery unhandled, count the attempt."""
        with self._db.write() as session:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id) == row_id)
                .values(error=error, attempts=Delivery.attempts + 1)
            )

    def get(self, delivery_id: str) -> Delivery | None:
        with self._db.read() as session:
            return session.exec(select(Delivery).where(Delivery.delivery_id == delivery_id)).first()

    def count(self) -> int:
        with self._db.read() as session:
            return session.exec(select(func.count()).select_from(Delivery)).one()
