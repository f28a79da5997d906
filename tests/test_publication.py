"""What GitHub shows follows the store: a status comment or check run GitHub failed to take is
published again by the reconcile loop, with backoff, until it shows what the task's state says;
and Bosun's creates are never sent twice after a failure GitHub may have acted on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.core.task_states import TaskState
from bot.execution.publication import Publisher, check
from bot.github.client import GitHubClient
from bot.github.types import Repo
from bot.store import Publish, Store
from bot.store.database import as_utc
from tests.dispatch import Dispatch
from tests.events import example_config, issue_label_event
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]
COMMENTS = r"^/repos/acme/app/issues/12/comments$"


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    repo = fake_github.add_repo("acme", "app", installation_id=7, files=example_config())
    fake_github.add_issue("acme", "app", number=12, title="Crash on empty input")
    fake_github.set_permission("acme", "app", "alice", "write")
    return repo


def statuses(fake: FakeGitHub) -> list[str]:
    return [c["body"] for c in fake.comments("acme", "app", 12) if "bosun:status" in c["body"]]


async def test_a_status_comment_github_refused_is_posted_by_the_next_pass(
    dispatch: Dispatch,
    store: Store,
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    clock: FakeClock,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """GitHub is down while a task is queued: the task is queued all the same, and once
    GitHub answers again the loop posts the one status comment it should have."""
    fake_github.fail_next("POST", COMMENTS, 503, times=100)
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    [task] = store.tasks.all("acme/app")
    assert task.state == TaskState.QUEUED and task.publish_pending
    assert statuses(fake_github) == []

    publisher = Publisher(github=github_via_prism, store=store, clock=clock)
    assert await publisher.sync_due() == 0  # too soon: the in-line publish just had its try
    fake_github.reset_failures()
    clock.advance(60)
    assert await publisher.sync_due() == 1

    [status] = statuses(fake_github)
    assert "**Queued** `fix-bug`" in status
    shown = store.tasks.get(task.id or 0)
    assert shown is not None and not shown.publish_pending
    assert shown.status_synced == shown.status_revision
    assert await publisher.sync_due() == 0
    assert prism_violations() == []


async def test_a_failed_publication_waits_out_its_backoff(
    store: Store,
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    clock: FakeClock,
    repo: Repo,
    dispatch: Dispatch,
) -> None:
    """Each failed try doubles the wait before the next, so a GitHub outage is not hammered."""
    fake_github.fail_next("POST", COMMENTS, 503, times=1000)
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    [task] = store.tasks.all("acme/app")
    publisher = Publisher(github=github_via_prism, store=store, clock=clock)
    clock.advance(60)
    waits = []
    for _ in range(3):
        assert await publisher.sync_due() == 1
        failed = store.tasks.get(task.id or 0)
        assert failed is not None and failed.publish_not_before is not None
        waits.append((as_utc(failed.publish_not_before) - clock.now()).total_seconds())
        assert await publisher.sync_due() == 0  # not before its time
        clock.advance(waits[-1])
    assert waits[1] == 2 * waits[0] and waits[2] == 2 * waits[1]


async def test_a_check_run_the_store_asks_for_is_published_once_per_commit(
    store: Store,
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    clock: FakeClock,
    repo: Repo,
    dispatch: Dispatch,
    prism_violations: Violations,
) -> None:
    """A check run GitHub failed to take is created by the next pass; a later publication for
    the same commit updates it instead of adding a second."""
    fake_github.add_branch("acme", "app", "bosun/fix-bug/12")
    sha = fake_github.set_file("acme", "app", "fix.py", b"x\n", branch="bosun/fix-bug/12")
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    [task] = store.tasks.all("acme/app")
    assert task.id is not None
    fake_github.fail_next("POST", r"^/repos/acme/app/check-runs$", 500, times=100)
    publisher = Publisher(github=github_via_prism, store=store, clock=clock)
    shown = check(head_sha=sha, conclusion="failure", title="Task failed")
    store.tasks.update(task.id, publish=Publish(check=shown))
    assert not await publisher.sync(task.id)
    assert fake_github.check_runs("acme", "app", head_sha=sha) == []

    fake_github.reset_failures()
    clock.advance(60)
    assert await publisher.sync_due() == 1
    store.tasks.update(task.id, publish=Publish(check=shown | {"title": "Task failed again"}))
    assert await publisher.sync(task.id)

    [run] = fake_github.check_runs("acme", "app", head_sha=sha)
    assert (run["name"], run["conclusion"]) == ("bosun/task", "failure")
    assert run["output"]["title"] == "Task failed again"
    assert prism_violations() == []
