"""`Store`: the one database object, and a repository for each group of tables."""

from __future__ import annotations

from bot.core.clock import Clock
from bot.store.audit import AuditLog
from bot.store.configs import Configs
from bot.store.database import Database
from bot.store.deliveries import Deliveries
from bot.store.installations import Installations
from bot.store.leases import Leases
from bot.store.model_calls import ModelCalls
from bot.store.tasks import Tasks
from bot.store.transcripts import Transcripts


class Store:
    """Everything Bosun remembers, over SQLite or PostgreSQL, each write one short transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.deliveries = Deliveries(db)
        self.tasks = Tasks(db)
        self.leases = Leases(db)
        self.model_calls = ModelCalls(db)
        self.installations = Installations(db)
        self.audit = AuditLog(db)
        self.configs = Configs(db)
        self.transcripts = Transcripts(db)

    @classmethod
    def connect(cls, url: str, *, clock: Clock) -> Store:
        return cls(Database.connect(url, clock=clock))

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def migrate(self) -> None:
        self.db.migrate()

    def ping(self) -> bool:
        return self.db.ping()

    def close(self) -> None:
        self.db.close()
