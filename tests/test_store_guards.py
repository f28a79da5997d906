"""Every conditional write a race depends on, one losing race at a time, on both databases.

Each test sets up the state a race would leave, then makes the write that arrives too late:
it must change nothing, write no audit record and release no lock that is not its own.
"""

from __future__ import annotations

import pytest

from bot.core.errors import IllegalTransition
from bot.core.task_states import TaskState
from bot.store import AuditEntry, Publish, Store
from bot.store.tables import Task
from tests.events import new_task
from tests.fakeclock import FakeClock

KEY = "branch:acme/app:bosun/fix-bug/12"
ENTRY = AuditEntry(actor="bosun", action="task.test", repo_full_name="acme/app")


def running(store: Store, *, holder: str = "w1", **overrides: object) -> Task:
    task = store.tasks.create(new_task(**overrides))
    assert task is not None and task.id is not None
    claimed = store.tasks.claim(task.id, lock_key=KEY, holder=holder, ttl=60)
    assert claimed is not None and claimed.state == TaskState.RUNNING
    return claimed


def actions(store: Store) -> list[str]:
    return [record.action for record in store.audit.records()]


def test_a_cancel_asked_for_during_a_run_is_never_turned_into_a_retry(store: Store) -> None:
    """The worker's retry arrives after a person's cancel: the task stays for the cancel."""
    task = running(store)
    assert task.id is not None
    asked = store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="cancelled", audit=ENTRY)
    assert asked is not None and asked.cancel_requested

    retried = store.tasks.finish_run(
        task.id, TaskState.QUEUED, lock_key=KEY, holder="w1", audit=ENTRY.about(None)
    )

    assert not retried
    after = store.tasks.get(task.id)
    assert after is not None and after.state == TaskState.RUNNING and after.cancel_requested
    assert actions(store) == ["task.cancel_requested"]
    assert store.tasks.finish_run(task.id, TaskState.CANCELLED, lock_key=KEY, holder="w1")


def test_a_lost_run_cancelled_meanwhile_is_never_retried_by_recovery(
    store: Store, clock: FakeClock
) -> None:
    """Recovery's retry of a dead worker's run loses to a cancel asked for before it."""
    task = running(store)
    assert task.id is not None
    store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="cancelled")
    clock.advance(120)  # the lease lapses
    assert not store.tasks.end_lost_run(
        task.id, TaskState.QUEUED, worker_id="w1", attempt=1, audit=ENTRY
    )
    assert store.tasks.end_lost_run(task.id, TaskState.CANCELLED, worker_id="w1", attempt=1)


def test_a_worker_that_lost_its_lease_cannot_end_the_run(store: Store, clock: FakeClock) -> None:
    """Another worker took the run over: the first one's late ending changes nothing."""
    task = running(store, holder="w1")
    assert task.id is not None
    clock.advance(120)
    assert store.tasks.end_lost_run(task.id, TaskState.QUEUED, worker_id="w1", attempt=1)
    again = store.tasks.claim(task.id, lock_key=KEY, holder="w2", ttl=60)
    assert again is not None and again.attempts == 2

    late = store.tasks.finish_run(
        task.id, TaskState.PR_OPEN, lock_key=KEY, holder="w1", audit=ENTRY, pr_number=5
    )

    assert not late
    after = store.tasks.get(task.id)
    assert after is not None and after.state == TaskState.RUNNING and after.pr_number is None
    assert [lease.holder for lease in store.leases.all()] == ["w2"]
    assert "task.test" not in actions(store)


def test_recovery_never_ends_a_run_whose_lease_is_live(store: Store) -> None:
    """A worker that is only slow keeps its run: recovery needs the lease to have lapsed."""
    task = running(store)
    assert task.id is not None
    assert not store.tasks.end_lost_run(
        task.id, TaskState.FAILED, worker_id="w1", attempt=1, audit=ENTRY
    )
    assert actions(store) == []


def test_recovery_never_ends_a_newer_run_of_the_same_task(store: Store, clock: FakeClock) -> None:
    """Two replicas noticed the same loss: one ends it, the other finds a newer run and
    leaves it alone, whichever attempt or worker it names."""
    task = running(store, holder="w1")
    assert task.id is not None
    clock.advance(120)
    assert store.tasks.end_lost_run(
        task.id, TaskState.QUEUED, worker_id="w1", attempt=1, audit=ENTRY
    )
    assert store.tasks.claim(task.id, lock_key=KEY, holder="w2", ttl=60) is not None
    clock.advance(120)

    assert not store.tasks.end_lost_run(task.id, TaskState.FAILED, worker_id="w1", attempt=1)
    assert not store.tasks.end_lost_run(task.id, TaskState.FAILED, worker_id="w2", attempt=1)
    assert actions(store) == ["task.test"]


def test_a_claim_loses_to_a_held_lock_and_takes_over_an_expired_one(
    store: Store, clock: FakeClock
) -> None:
    """No two running tasks hold one branch; a dead holder's lock goes to the next claim."""
    first = running(store, holder="w1")
    second = store.tasks.create(new_task(issue_number=13, trigger_delivery_id="d-2"))
    assert second is not None and second.id is not None

    assert store.tasks.claim(second.id, lock_key=KEY, holder="w2", ttl=60) is None
    assert store.tasks.get(second.id).state == TaskState.QUEUED  # type: ignore[union-attr]
    assert [lease.task_id for lease in store.leases.all()] == [first.id]

    clock.advance(61)
    taken = store.tasks.claim(second.id, lock_key=KEY, holder="w2", ttl=60)
    assert taken is not None and taken.worker_id == "w2"
    assert [lease.task_id for lease in store.leases.all()] == [second.id]


def test_a_task_that_is_no_longer_queued_is_never_claimed(store: Store) -> None:
    """A cancel between the scheduler's read and its claim wins, and no lock is left."""
    task = store.tasks.create(new_task())
    assert task is not None and task.id is not None
    store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="cancelled")
    assert store.tasks.claim(task.id, lock_key=KEY, holder="w1", ttl=60) is None
    assert store.leases.all() == []


def test_a_transition_from_a_state_the_task_has_left_does_nothing(store: Store) -> None:
    """Two handlers move the same task: the second's move, and its audit record, are lost."""
    task = store.tasks.create(new_task(), state=TaskState.HELD)
    assert task is not None and task.id is not None
    assert store.tasks.transition(
        task.id, TaskState.HELD, TaskState.QUEUED, audit=ENTRY.about(None, action="first")
    )
    assert not store.tasks.transition(
        task.id, TaskState.HELD, TaskState.CANCELLED, audit=ENTRY.about(None, action="second")
    )
    assert actions(store) == ["first"]
    with pytest.raises(IllegalTransition):
        store.tasks.transition(task.id, TaskState.QUEUED, TaskState.DONE)


def test_a_cancel_of_a_task_that_just_ended_finds_nothing_to_cancel(store: Store) -> None:
    """The run opened its pull request a moment before the cancel: nothing is cancelled."""
    task = running(store)
    assert task.id is not None
    assert store.tasks.finish_run(task.id, TaskState.PR_OPEN, lock_key=KEY, holder="w1")
    cancelled = store.tasks.request_cancel(
        "acme/app", 12, "fix-bug", reason="too late", audit=ENTRY
    )
    assert cancelled is None
    assert store.tasks.get(task.id).state == TaskState.PR_OPEN  # type: ignore[union-attr]
    assert actions(store) == []


def test_a_lease_is_renewed_and_released_only_by_its_holder(store: Store) -> None:
    """A worker that lost its lock cannot renew it, nor free the next holder's."""
    running(store, holder="w1")
    assert not store.leases.renew(KEY, holder="w2", ttl=60)
    store.leases.release(KEY, holder="w2")
    assert [lease.holder for lease in store.leases.all()] == ["w1"]
    assert store.leases.renew(KEY, holder="w1", ttl=60)
    assert not store.leases.take(KEY, task_id=99, holder="w2", ttl=60)


def test_the_audit_record_is_written_with_the_state_and_only_with_it(store: Store) -> None:
    """A state change and its record are one transaction: both or neither."""
    task = running(store)
    assert task.id is not None
    assert store.tasks.finish_run(
        task.id, TaskState.FAILED, lock_key=KEY, holder="w1", audit=ENTRY, reason="x"
    )
    [record] = store.audit.records()
    assert (record.task_id, record.action) == (task.id, "task.test")
    assert not store.tasks.finish_run(task.id, TaskState.FAILED, lock_key=KEY, holder="w1")
    assert len(store.audit.records()) == 1


def test_a_publication_overtaken_by_a_newer_one_is_not_marked_shown(store: Store) -> None:
    """What GitHub shows is marked only for the revision that was shown; a newer one stays
    pending, so the reconcile loop shows it too."""
    task = store.tasks.create(new_task(), publish=Publish(status={"phase": "queued"}))
    assert task is not None and task.id is not None and task.status_revision == 1
    store.tasks.update(task.id, publish=Publish(status={"phase": "cancelled"}))

    assert not store.tasks.mark_published(task.id, status_revision=1, check_revision=None)
    after = store.tasks.get(task.id)
    assert after is not None and after.publish_pending and after.status_synced == 0
    assert store.tasks.mark_published(task.id, status_revision=2, check_revision=None)
    shown = store.tasks.get(task.id)
    assert shown is not None and not shown.publish_pending and shown.status_synced == 2


def test_no_write_puts_a_task_asked_to_stop_back_in_the_queue(store: Store) -> None:
    """Whichever write requeues a run (a worker's retry, recovery, a plain transition), a
    cancel asked for first wins: the cancel is never lost to a fresh claim."""
    task = running(store)
    assert task.id is not None
    store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="cancelled")
    assert not store.tasks.transition(task.id, TaskState.RUNNING, TaskState.QUEUED)
    after = store.tasks.get(task.id)
    assert after is not None and after.state == TaskState.RUNNING and after.cancel_requested
