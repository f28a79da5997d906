"""The store: one database object, a repository per table group, tables and migrations."""

from bot.store.audit import AuditEntry
from bot.store.deliveries import NewDelivery, StoredDelivery
from bot.store.model_calls import NewModelCall
from bot.store.store import Store
from bot.store.tasks import NewTask, Publish

__all__ = [
    "AuditEntry",
    "NewDelivery",
    "NewModelCall",
    "NewTask",
    "Publish",
    "Store",
    "StoredDelivery",
]
