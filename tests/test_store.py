"""The store keeps deliveries, tasks, installations and audit records on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.core.task_states import TaskState
from bot.store import AuditEntry, NewDelivery, Store
from bot.store.migrate import downgrade
from bot.store.tables import SQLModel
from tests.events import new_task
from tests.fakeclock import FakeClock


def delivery(delivery_id: str, body: bytes = b"{}") -> NewDelivery:
    return NewDelivery(
        delivery_id=delivery_id,
        event="issues",
        action="labeled",
        installation_id=7,
        repo_full_name="acme/app",
        body=body,
    )


def test_migrations_match_the_models(store: Store) -> None:
    """The migrated schema is exactly what the models declare, so no change slips past Alembic."""
    with store.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_migrations_downgrade_to_nothing_and_back(store: Store) -> None:
    """Every migration can be undone and redone: an operator can roll back a release."""
    downgrade(store.db.engine, "base")
    assert set(inspect(store.db.engine).get_table_names()) <= {"alembic_version"}
    store.migrate()
    assert "delivery" in inspect(store.db.engine).get_table_names()


def test_a_delivery_id_is_stored_once(store: Store) -> None:
    """A redelivered webhook is recognised by its delivery id and not stored again."""
    assert store.deliveries.insert_many([delivery("a"), delivery("b")]) == {"a", "b"}
    assert store.deliveries.insert_many([delivery("a", b'{"x":1}'), delivery("c")]) == {"c"}
    assert store.deliveries.count() == 3
    stored = store.deliveries.get("a")
    assert stored is not None and stored.body == b"{}"


def test_unhandled_deliveries_come_back_in_arrival_order(store: Store) -> None:
    """After a restart the deliveries not yet handled are replayed oldest first."""
    store.deliveries.insert_many([delivery("a"), delivery("b"), delivery("c")])
    first = store.deliveries.unhandled()
    assert [d.delivery_id for d in first] == ["a", "b", "c"]
    store.deliveries.mark_handled([(first[0].id, "handled", None)])
    store.deliveries.record_attempt(first[1].id, error="GitHub 502")
    again = store.deliveries.unhandled()
    assert [(d.delivery_id, d.attempts) for d in again] == [("b", 1), ("c", 0)]


def test_one_active_task_per_issue_and_task_name(store: Store) -> None:
    """Labelling twice never queues the same task twice while one is active."""
    first = store.tasks.create(new_task())
    assert first is not None and first.state == TaskState.QUEUED
    assert store.tasks.create(new_task(trigger_delivery_id="d-2")) is None
    other = store.tasks.create(new_task(task_name="add-tests", trigger_delivery_id="d-3"))
    assert other is not None
    assert [t.task_name for t in store.tasks.active_for_issue("acme/app", 12)] == [
        "fix-bug",
        "add-tests",
    ]


def test_the_same_delivery_never_makes_two_tasks(store: Store) -> None:
    """Handling a delivery again after a crash does not duplicate its task."""
    first = store.tasks.create(new_task())
    assert first is not None
    store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="test")
    assert store.tasks.create(new_task()) is None
    assert len(store.tasks.all("acme/app")) == 1


def test_cancelling_a_queued_task_is_idempotent(store: Store, clock: FakeClock) -> None:
    """Cancelling twice cancels once; a new label after that queues a fresh task."""
    store.tasks.create(new_task())
    clock.advance(5)
    cancelled = store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="label removed")
    assert cancelled is not None and cancelled.state == TaskState.CANCELLED
    assert cancelled.reason == "label removed"
    assert store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="again") is None
    assert store.tasks.create(new_task(trigger_delivery_id="d-9")) is not None


def test_installations_and_their_repositories(store: Store) -> None:
    """Bosun remembers where it is installed and which repositories it may see."""
    store.installations.record(
        installation_id=2**40, account_login="acme", account_type="Organization", status="active"
    )
    store.installations.set_repositories(2**40, added=["acme/app", "acme/web"], removed=[])
    store.installations.set_repositories(2**40, added=["acme/api"], removed=["acme/web"])
    store.installations.record(
        installation_id=2**40, account_login="acme", account_type="Organization", status="deleted"
    )
    installation = store.installations.get(2**40)
    assert installation is not None and installation.status == "deleted"
    assert store.installations.repositories(2**40) == ["acme/api", "acme/app"]


def test_audit_records_keep_who_what_where(store: Store, clock: FakeClock) -> None:
    """Every audit record carries actor, action, repo, delivery id and config commit."""
    store.audit.record(
        AuditEntry(
            actor="alice",
            action="task.queued",
            repo_full_name="acme/app",
            delivery_id="d-1",
            config_sha="abc123",
            task_id=1,
            detail={"issue": 12},
        )
    )
    [record] = store.audit.records(repo_full_name="acme/app")
    assert (record.actor, record.action, record.delivery_id, record.config_sha) == (
        "alice",
        "task.queued",
        "d-1",
        "abc123",
    )
    assert record.detail == {"issue": 12}


def test_ping_reports_an_unreachable_database(tmp_path: object) -> None:
    """/healthz can tell a dead database from a live one."""
    dead = Store.connect("postgresql://nobody@127.0.0.1:1/none", clock=FakeClock())
    assert dead.ping() is False


def test_replicas_migrating_at_once_do_not_collide(postgres_url: str) -> None:
    """Several `bosun serve` replicas starting together on one PostgreSQL all come up."""
    from concurrent.futures import ThreadPoolExecutor

    stores = [Store.connect(postgres_url, clock=FakeClock()) for _ in range(4)]
    downgrade(stores[0].db.engine, "base")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda s: s.migrate(), stores))
    assert "task" in inspect(stores[0].db.engine).get_table_names()
    for s in stores:
        s.close()


def test_upgrading_keeps_existing_tasks(store: Store) -> None:
    """An operator upgrading Bosun keeps the tasks queued under the earlier schema."""
    downgrade(store.db.engine, "0001")
    with store.db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO task (installation_id, repo_full_name, issue_number, is_pull_request,"
                " task_name, state, branch, triggered_by, trigger_delivery_id, created_at,"
                " updated_at) VALUES (7, 'acme/app', 12, false, 'fix-bug', 'queued',"
                " 'bosun/fix-bug/12', 'alice', 'd-1', :now, :now)"
            ),
            {"now": store.db.clock.now()},
        )
    store.migrate()
    [task] = store.tasks.all("acme/app")
    assert (task.state, task.attempts, task.max_attempts, task.base_branch) == (
        TaskState.QUEUED,
        0,
        2,
        "main",
    )
