"""`depends_on` through webhooks: a task waits until the pull requests of the tasks it depends
on merge for the same issue, and is cancelled when one of them never will."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gidgethub import sansio

from bot.core.task_states import TaskState
from bot.github.types import Repo
from bot.store import NewTask, Store
from bot.store.tables import Task
from tests.events import (
    comment_event,
    example_config,
    issue_closed_event,
    issue_label_event,
    new_task,
    pull_closed_event,
)
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    """The sample config, where `add-tests` depends on `fix-bug`."""
    repo = fake_github.add_repo("acme", "app", installation_id=7, files=example_config())
    fake_github.add_issue("acme", "app", number=12, title="Crash on empty input")
    fake_github.set_permission("acme", "app", "alice", "write")
    fake_github.set_permission("acme", "app", "trinity", "triage")
    fake_github.set_permission("acme", "app", "maya", "maintain")
    return repo


def label(task_name: str, *, delivery_id: str, sender: str = "alice") -> sansio.Event:
    return issue_label_event(
        "labeled", label=f"agent:{task_name}", sender=sender, delivery_id=delivery_id
    )


def said(fake: FakeGitHub, body: str, *, sender: str, delivery_id: str) -> sansio.Event:
    comment_id = fake.add_comment("acme", "app", 12, body, user=sender)
    return comment_event(body, sender=sender, comment_id=comment_id, delivery_id=delivery_id)


def task_named(store: Store, task_name: str) -> Task:
    """The issue's latest task of that name."""
    return [task for task in store.tasks.all("acme/app") if task.task_name == task_name][-1]


def status_of(fake: FakeGitHub, task_name: str) -> str:
    """The body of a task's one status comment on issue 12."""
    marker = f"<!-- bosun:status issue=12 task={task_name} -->"
    [body] = [c["body"] for c in fake.comments("acme", "app", 12) if c["body"].startswith(marker)]
    return str(body)


def pull_request_opened(store: Store, task_name: str, pr_number: int) -> None:
    """A worker ran the task and opened pull request `pr_number`."""
    task = task_named(store, task_name)
    assert task.id is not None
    key = f"k-{task.id}"
    assert store.tasks.claim(task.id, lock_key=key, holder="w", ttl=60) is not None
    assert store.tasks.finish_run(
        task.id, TaskState.PR_OPEN, lock_key=key, holder="w", pr_number=pr_number
    )


async def test_a_task_waits_for_the_task_it_depends_on(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """`agent:add-tests` before any fix-bug has merged: add-tests waits, and says for what."""
    await dispatch(label("add-tests", delivery_id="d-1"))
    task = task_named(store, "add-tests")
    assert task.state == TaskState.WAITING
    status = status_of(fake_github, "add-tests")
    assert "**Waiting**: `add-tests` starts from the base branch" in status
    assert "Still to merge: `fix-bug`." in status
    [record] = store.audit.records(repo_full_name="acme/app")
    assert (record.action, record.detail["waits_for"]) == ("task.waiting", ["fix-bug"])
    assert store.tasks.queued(limit=10) == []
    assert prism_violations() == []


async def test_merging_the_dependency_queues_the_waiting_task(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """fix-bug's pull request merged: add-tests is queued, by the person who merged."""
    await dispatch(label("fix-bug", delivery_id="d-1"))
    await dispatch(label("add-tests", delivery_id="d-2"))
    pull_request_opened(store, "fix-bug", 40)
    assert task_named(store, "add-tests").state == TaskState.WAITING
    await dispatch(pull_closed_event(number=40, merged=True))
    assert task_named(store, "fix-bug").state == TaskState.DONE
    task = task_named(store, "add-tests")
    assert (task.state, task.reason) == (TaskState.QUEUED, "`fix-bug`'s pull request #40 merged")
    assert "**Queued** `add-tests` on branch `bosun/add-tests/12`" in status_of(
        fake_github, "add-tests"
    )
    released = store.audit.last(task.id or 0, "task.released")
    assert released is not None and released.actor == "bob"
    assert released.detail == {"issue": 12, "dependency": "fix-bug"}
    assert prism_violations() == []


async def test_a_merge_handled_again_after_a_failure_still_releases_the_waiting_task(
    dispatch, store: Store, repo: Repo
) -> None:
    """An attempt that marked fix-bug done and then failed is retried: add-tests goes on."""
    await dispatch(label("fix-bug", delivery_id="d-1"))
    await dispatch(label("add-tests", delivery_id="d-2"))
    pull_request_opened(store, "fix-bug", 40)
    fix = task_named(store, "fix-bug")
    assert fix.id is not None
    assert store.tasks.transition(fix.id, TaskState.PR_OPEN, TaskState.DONE, reason="merged")
    await dispatch(pull_closed_event(number=40, merged=True))
    assert task_named(store, "add-tests").state == TaskState.QUEUED


async def test_a_dependency_closed_unmerged_cancels_the_waiting_task(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """fix-bug's pull request closed without merging: add-tests can never start, so it ends."""
    await dispatch(label("fix-bug", delivery_id="d-1"))
    await dispatch(label("add-tests", delivery_id="d-2"))
    pull_request_opened(store, "fix-bug", 40)
    await dispatch(pull_closed_event(number=40, merged=False))
    assert task_named(store, "fix-bug").state == TaskState.ABANDONED
    task = task_named(store, "add-tests")
    reason = "its dependency `fix-bug` was abandoned (pull request #40 closed by @bob)"
    assert (task.state, task.reason) == (TaskState.CANCELLED, reason)
    assert f"**`add-tests` was cancelled**: {reason}" in status_of(fake_github, "add-tests")
    cancelled = store.audit.last(task.id or 0, "task.cancelled")
    assert cancelled is not None and cancelled.detail["dependency"] == "fix-bug"
    assert prism_violations() == []


async def test_removing_the_label_cancels_a_waiting_task(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    await dispatch(label("add-tests", delivery_id="d-1"))
    await dispatch(
        issue_label_event("unlabeled", label="agent:add-tests", delivery_id="d-2"),
    )
    task = task_named(store, "add-tests")
    assert (task.state, task.reason) == (TaskState.CANCELLED, "label removed by @alice")
    assert "**`add-tests` was cancelled**: label removed by @alice" in status_of(
        fake_github, "add-tests"
    )
    assert prism_violations() == []


async def test_cancelling_the_dependency_cancels_the_task_waiting_on_it(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """fix-bug's label removed while it is queued: add-tests goes too, and says why."""
    await dispatch(label("fix-bug", delivery_id="d-1"))
    await dispatch(label("add-tests", delivery_id="d-2"))
    await dispatch(issue_label_event("unlabeled", label="agent:fix-bug", delivery_id="d-3"))
    task = task_named(store, "add-tests")
    reason = "its dependency `fix-bug` was cancelled (label removed by @alice)"
    assert (task.state, task.reason) == (TaskState.CANCELLED, reason)
    assert reason in status_of(fake_github, "add-tests")
    assert prism_violations() == []


async def test_closing_the_issue_cancels_a_waiting_task(dispatch, store: Store, repo: Repo) -> None:
    await dispatch(label("add-tests", delivery_id="d-1"))
    await dispatch(issue_closed_event())
    task = task_named(store, "add-tests")
    assert (task.state, task.reason) == (TaskState.CANCELLED, "issue closed by @alice")


async def test_cancel_command_cancels_a_waiting_task(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    await dispatch(label("add-tests", delivery_id="d-1"))
    await dispatch(said(fake_github, "/bosun cancel", sender="alice", delivery_id="c-1"))
    task = task_named(store, "add-tests")
    assert (task.state, task.reason) == (TaskState.CANCELLED, "cancelled by @alice")


async def test_ok_to_run_of_a_held_task_with_unmerged_dependencies_makes_it_wait(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Held wins at first; once allowed, the task still waits for fix-bug to merge."""
    await dispatch(label("add-tests", sender="trinity", delivery_id="d-1"))
    assert task_named(store, "add-tests").state == TaskState.HELD
    await dispatch(said(fake_github, "/bosun ok-to-run", sender="maya", delivery_id="c-1"))
    task = task_named(store, "add-tests")
    assert (task.state, task.reason) == (TaskState.WAITING, "released by @maya")
    assert "Still to merge: `fix-bug`." in status_of(fake_github, "add-tests")
    released = store.audit.last(task.id or 0, "task.released")
    assert released is not None and released.detail["waits_for"] == ["fix-bug"]
    assert prism_violations() == []


async def test_ok_to_run_of_a_held_task_whose_dependencies_merged_queues_it(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    await dispatch(label("fix-bug", delivery_id="d-1"))
    pull_request_opened(store, "fix-bug", 40)
    await dispatch(pull_closed_event(number=40, merged=True))
    await dispatch(label("add-tests", sender="trinity", delivery_id="d-2"))
    assert task_named(store, "add-tests").state == TaskState.HELD
    await dispatch(said(fake_github, "/bosun ok-to-run", sender="maya", delivery_id="c-1"))
    assert task_named(store, "add-tests").state == TaskState.QUEUED
    assert "**Queued** `add-tests`" in status_of(fake_github, "add-tests")
    assert prism_violations() == []


async def test_a_task_whose_dependencies_merged_is_queued_at_once(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    await dispatch(label("fix-bug", delivery_id="d-1"))
    pull_request_opened(store, "fix-bug", 40)
    await dispatch(pull_closed_event(number=40, merged=True))
    await dispatch(label("add-tests", delivery_id="d-2"))
    assert task_named(store, "add-tests").state == TaskState.QUEUED
    actions = [r.action for r in store.audit.records(repo_full_name="acme/app")]
    assert actions == ["task.queued", "task.done", "task.queued"]


async def test_dependencies_are_per_issue(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """fix-bug merged for issue 13 does nothing for add-tests on issue 12."""
    fake_github.add_issue("acme", "app", number=13)
    await dispatch(
        issue_label_event("labeled", label="agent:fix-bug", issue_number=13, delivery_id="d-1")
    )
    pull_request_opened(store, "fix-bug", 40)
    await dispatch(pull_closed_event(number=40, merged=True))
    await dispatch(label("add-tests", delivery_id="d-2"))
    assert task_named(store, "add-tests").state == TaskState.WAITING


async def test_a_failed_dependency_leaves_the_task_waiting_for_a_retry(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """fix-bug failed: add-tests keeps waiting, and `/bosun retry` runs fix-bug again."""
    await dispatch(label("fix-bug", delivery_id="d-1"))
    await dispatch(label("add-tests", delivery_id="d-2"))
    fix = task_named(store, "fix-bug")
    assert fix.id is not None
    store.tasks.claim(fix.id, lock_key="k", holder="w", ttl=60)
    store.tasks.finish_run(
        fix.id, TaskState.FAILED, lock_key="k", holder="w", reason="budget spent"
    )
    assert task_named(store, "add-tests").state == TaskState.WAITING
    await dispatch(said(fake_github, "/bosun retry", sender="alice", delivery_id="c-1"))
    states = [(t.task_name, t.state) for t in store.tasks.all("acme/app")]
    assert states == [
        ("fix-bug", TaskState.FAILED),
        ("add-tests", TaskState.WAITING),
        ("fix-bug", TaskState.QUEUED),
    ]


async def test_the_status_comment_follows_what_is_still_to_merge(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """With two dependencies, the first merge leaves the task waiting on the second."""
    spec = example_config()[".bosun/tasks/add-tests.yaml"]
    spec = spec.replace(b"depends_on: [fix-bug]", b"depends_on: [fix-bug, update-docs]")
    fake_github.set_file("acme", "app", ".bosun/tasks/add-tests.yaml", spec)
    await dispatch(label("fix-bug", delivery_id="d-1"))
    await dispatch(label("update-docs", delivery_id="d-2"))
    await dispatch(label("add-tests", delivery_id="d-3"))
    assert "Still to merge: `fix-bug`, `update-docs`." in status_of(fake_github, "add-tests")
    pull_request_opened(store, "fix-bug", 40)
    pull_request_opened(store, "update-docs", 41)
    await dispatch(pull_closed_event(number=40, merged=True, delivery_id="pc-1"))
    assert task_named(store, "add-tests").state == TaskState.WAITING
    assert "Still to merge: `update-docs`." in status_of(fake_github, "add-tests")
    await dispatch(pull_closed_event(number=41, merged=True, delivery_id="pc-2"))
    assert task_named(store, "add-tests").state == TaskState.QUEUED
    assert prism_violations() == []


def test_the_store_keeps_one_active_task_and_cancels_a_waiting_one_at_once(store: Store) -> None:
    """Waiting is active: no second add-tests while one waits, and cancelling needs no worker."""

    def new(delivery_id: str) -> NewTask:
        return new_task(
            task_name="add-tests",
            branch="bosun/add-tests/12",
            trigger_delivery_id=delivery_id,
            config_sha=None,
        )

    task = store.tasks.create(new("d-1"), state=TaskState.WAITING)
    assert task is not None and task.state == TaskState.WAITING
    assert store.tasks.create(new("d-2")) is None
    assert [t.id for t in store.tasks.active_for_issue("acme/app", 12)] == [task.id]
    cancelled = store.tasks.request_cancel("acme/app", 12, "add-tests", reason="label removed")
    assert cancelled is not None and cancelled.state == TaskState.CANCELLED
    assert store.tasks.active_for_issue("acme/app", 12) == []
