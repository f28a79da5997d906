"""Model calls: each one kept, and added to its task's totals in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select

from bot.store.database import Database
from bot.store.tables import ModelCallRecord, Task


@dataclass(frozen=True, kw_only=True)
class NewModelCall:
    task_id: int
    attempt: int
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cache_hit: bool
    latency_ms: float
    tier: str | None = None


class ModelCalls:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, call: NewModelCall) -> None:
        with self._db.write() as session:
            session.add(ModelCallRecord(at=self._db.now(), **vars(call)))
            session.execute(
                update(Task)
                .where(col(Task.id) == call.task_id)
                .values(
                    cost_usd=Task.cost_usd + call.cost_usd,
                    tokens_in=Task.tokens_in + call.tokens_in,
                    tokens_out=Task.tokens_out + call.tokens_out,
                )
            )

    def for_task(self, task_id: int) -> list[ModelCallRecord]:
        with self._db.read() as session:
            return list(
                session.exec(
                    select(ModelCallRecord)
                    .where(ModelCallRecord.task_id == task_id)
                    .order_by(col(ModelCallRecord.id))
                ).all()
            )
