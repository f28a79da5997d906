"""The one database object: the engine, short transactions in turn, migrations and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.core.clock import Clock
from bot.core.errors import StoreError
from bot.store import migrate
from bot.store.engine import make_engine


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Bosun stores is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Database:
    """Sessions over SQLite or PostgreSQL; every store repository reads and writes through it."""

    def __init__(self, engine: Engine, *, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        # SQLite has one writer at a time. Waiting writers sleep-poll for its lock, and a
        # session that reads, then writes, fails at once if another writer slipped in
        # between; so this process's writers take turns on a lock of their own. Intake's
        # deliveries stay off it: its group commit must not wait behind a scheduler pass.
        self._turns: AbstractContextManager[Any] = (
            threading.RLock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    @classmethod
    def connect(cls, url: str, *, clock: Clock) -> Database:
        return cls(make_engine(url), clock=clock)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def insert(self) -> Any:
        """The dialect's INSERT, which knows ON CONFLICT."""
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    def now(self) -> datetime:
        return self.clock.now()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; rows come back detached and usable after it closes."""
        with translated(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self, *, in_turn: bool = True) -> Iterator[Session]:
        """One write transaction, committed on leaving the block, rolled back on an error."""
        turns: AbstractContextManager[Any] = self._turns if in_turn else nullcontext()
        with (
            translated(),
            turns,
            Session(self.engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def migrate(self) -> None:
        with translated():
            migrate.upgrade(self.engine)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def translated() -> Iterator[None]:
    """SQLAlchemy's errors become `StoreError`, at the one place they enter Bosun."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {type(exc).__name__}: {exc}") from exc
