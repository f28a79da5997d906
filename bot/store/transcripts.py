"""Transcripts: every step of every attempt, as the agent and Bosun took it, for people to read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select

from bot.store.database import Database
from bot.store.tables import TranscriptStep

OUTPUT_LIMIT = 8_000  # characters of a step's output kept: its tail, where errors are


@dataclass(frozen=True, kw_only=True)
class NewStep:
    task_id: int
    attempt: int
    phase: str  # setup, agent, verify
    name: str
    ok: bool
    exit_code: int | None = None
    duration_ms: float = 0.0
    output: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)


class Transcripts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, steps: Sequence[NewStep]) -> None:
        """Append steps after the attempt's last one, in the order given."""
        if not steps:
            return
        first = steps[0]
        with self._db.write() as session:
            last = session.exec(
                select(func.max(TranscriptStep.seq))
                .where(TranscriptStep.task_id == first.task_id)
                .where(TranscriptStep.attempt == first.attempt)
            ).one()
            seq = (last or 0) + 1
            for offset, step in enumerate(steps):
                session.add(
                    TranscriptStep(
                        task_id=step.task_id,
                        attempt=step.attempt,
                        seq=seq + offset,
                        at=self._db.now(),
                        phase=step.phase,
                        name=step.name[:128],
                        arguments=dict(step.arguments),
                        ok=step.ok,
                        exit_code=step.exit_code,
                        duration_ms=step.duration_ms,
                        output=tail(step.output),
                    )
                )

    def for_task(self, task_id: int, *, attempt: int | None = None) -> list[TranscriptStep]:
        """The task's steps (of one attempt, if given), in the order they were taken."""
        with self._db.read() as session:
            query = select(TranscriptStep).where(TranscriptStep.task_id == task_id)
            if attempt is not None:
                query = query.where(TranscriptStep.attempt == attempt)
            order = (col(TranscriptStep.attempt), col(TranscriptStep.seq))
            return list(session.exec(query.order_by(*order)).all())

    def prune(self, *, before: datetime) -> int:
        """Forget steps older than `before` (the retention the operator set)."""
        with self._db.write() as session:
            result = session.execute(
                delete(TranscriptStep)
                .where(col(TranscriptStep.at) < before)
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)


def tail(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """The last `limit` characters, marked as cut when they are."""
    return text if len(text) <= limit else "…(cut)\n" + text[-limit:]
