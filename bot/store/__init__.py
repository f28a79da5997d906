"""The store: tables, the `Store` with intention-revealing methods, and migrations."""

from bot.store.store import NewDelivery, NewTask, Store, StoredDelivery

__all__ = ["NewDelivery", "NewTask", "Store", "StoredDelivery"]
