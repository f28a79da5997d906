"""The store: one database object, a repository per table group, tables and migrations."""

from bot.store.audit import AuditEntry
from bot.store.deliveries import NewDelivery, StoredDelivery
from bot.store.model_calls import NewModelCall
from bot.store.store import Store
from bot.store.tasks import NewTask, Publish
from bot.store.transcripts import NewStep

__all__ = [
    "AuditEntry",
    "NewDelivery",
    "NewModelCall",
    "NewStep",
    "NewTask",
    "Publish",
    "Store",
    "StoredDelivery",
]
