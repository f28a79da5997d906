"""Slash commands steer tasks from GitHub alone; pull requests and issues closing end tasks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gidgethub import sansio

from bot.core.task_states import TaskState
from bot.github.types import Repo
from bot.store import Store
from tests.events import (
    comment_event,
    example_config,
    issue_closed_event,
    issue_label_event,
    pull_closed_event,
)
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    repo = fake_github.add_repo("acme", "app", installation_id=7, files=example_config())
    fake_github.add_issue("acme", "app", number=12, title="Crash on empty input")
    fake_github.set_permission("acme", "app", "alice", "write")
    fake_github.set_permission("acme", "app", "trinity", "triage")
    fake_github.set_permission("acme", "app", "maya", "maintain")
    return repo


def said(fake: FakeGitHub, body: str, **kwargs: object) -> sansio.Event:
    """A comment posted on issue 12, as GitHub would deliver it."""
    user = str(kwargs.get("sender", "alice"))
    comment_id = fake.add_comment("acme", "app", 12, body, user=user)
    return comment_event(body, comment_id=comment_id, **kwargs)  # type: ignore[arg-type]


async def test_run_queues_the_task_and_acknowledges_with_a_reaction(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """`/bosun run fix-bug` from a writer queues it; the comment gets a thumbs-up."""
    event = said(fake_github, "Please fix this.\n/bosun run fix-bug")
    await dispatch(event)
    [task] = store.tasks.all("acme/app")
    assert (task.task_name, task.state, task.triggered_by) == ("fix-bug", TaskState.QUEUED, "alice")
    assert fake_github.reactions(event.data["comment"]["id"]) == ["+1"]
    assert prism_violations() == []


async def test_a_held_request_runs_only_after_ok_to_run_from_a_maintainer(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Below the trigger permission a request waits; only ok-to-run's permission releases it."""
    await dispatch(said(fake_github, "/bosun run fix-bug", sender="trinity", delivery_id="c-1"))
    [task] = store.tasks.all("acme/app")
    assert task.state == TaskState.HELD
    denied = said(fake_github, "/bosun ok-to-run", sender="alice", delivery_id="c-2")
    await dispatch(denied)
    assert store.tasks.all("acme/app")[0].state == TaskState.HELD
    assert fake_github.reactions(denied.data["comment"]["id"]) == ["-1"]
    assert any(
        "`/bosun ok-to-run` needs **maintain** permission" in c["body"]
        for c in fake_github.comments("acme", "app", 12)
    )
    await dispatch(said(fake_github, "/bosun ok-to-run", sender="maya", delivery_id="c-3"))
    [task] = store.tasks.all("acme/app")
    assert (task.state, task.reason) == (TaskState.QUEUED, "released by @maya")
    actions = [r.action for r in store.audit.records(repo_full_name="acme/app")]
    assert actions == ["task.held", "command.denied", "task.released"]
    assert prism_violations() == []


async def test_text_that_only_mentions_a_command_does_nothing(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Quoting or discussing a command in a sentence never acts and never answers."""
    before = len(fake_github.comments("acme", "app", 12))
    for body in ("I think `/bosun run fix-bug` would help", "> /bosun run fix-bug"):
        event = said(fake_github, body)
        await dispatch(event)
        assert fake_github.reactions(event.data["comment"]["id"]) == []
    assert store.tasks.all("acme/app") == []
    assert len(fake_github.comments("acme", "app", 12)) == before + 2


async def test_a_malformed_command_gets_the_help(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A garbled command gets a confused reaction and the list of commands."""
    event = said(fake_github, "/bosun launch the rockets")
    await dispatch(event)
    assert fake_github.reactions(event.data["comment"]["id"]) == ["confused"]
    reply = fake_github.comments("acme", "app", 12)[-1]["body"]
    assert reply.startswith("Bosun did not understand that: unknown command.")
    assert "- `/bosun run <task>`" in reply
    assert store.tasks.all("acme/app") == []


async def test_bots_are_never_answered(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A bot's comment, Bosun's own included, is never taken as a command."""
    await dispatch(said(fake_github, "/bosun run fix-bug", sender="ci[bot]", sender_type="Bot"))
    assert store.tasks.all("acme/app") == []


async def test_cancel_and_status(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """`/bosun cancel` stops the issue's tasks; `/bosun status` lists them."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    await dispatch(said(fake_github, "/bosun cancel", delivery_id="c-2"))
    [task] = store.tasks.all("acme/app")
    assert (task.state, task.reason) == (TaskState.CANCELLED, "cancelled by @alice")
    await dispatch(said(fake_github, "/bosun status", sender="trinity", delivery_id="c-3"))
    reply = fake_github.comments("acme", "app", 12)[-1]["body"]
    assert "| `fix-bug` | cancelled | 0 of 2 | $0.0000 | - |" in reply
    assert prism_violations() == []


async def test_retry_runs_the_last_task_again(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """`/bosun retry` queues the issue's last task anew once it has ended."""
    await dispatch(said(fake_github, "/bosun retry", delivery_id="c-0"))
    assert "Nothing to retry" in fake_github.comments("acme", "app", 12)[-1]["body"]
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    await dispatch(said(fake_github, "/bosun cancel", delivery_id="c-1"))
    await dispatch(said(fake_github, "/bosun retry", delivery_id="c-2"))
    states = [t.state for t in store.tasks.all("acme/app")]
    assert states == [TaskState.CANCELLED, TaskState.QUEUED]


async def test_merged_and_closed_pull_requests_end_their_tasks(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Merged: the task is done. Closed unmerged: abandoned. The status comment says which."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    [task] = store.tasks.all("acme/app")
    assert task.id is not None
    store.tasks.claim(task.id, lock_key="k", holder="w", ttl=60)
    store.tasks.finish_run(task.id, TaskState.PR_OPEN, lock_key="k", holder="w", pr_number=40)
    await dispatch(pull_closed_event(number=40, merged=True))
    done = store.tasks.get(task.id)
    assert done is not None and done.state == TaskState.DONE
    assert (
        "**Done**: `fix-bug`'s pull request #40 was merged."
        in (fake_github.comments("acme", "app", 12)[0]["body"])
    )

    fake_github.add_issue("acme", "app", number=13)
    await dispatch(
        issue_label_event("labeled", label="agent:fix-bug", issue_number=13, delivery_id="d-13")
    )
    second = store.tasks.all("acme/app")[-1]
    assert second.id is not None
    store.tasks.claim(second.id, lock_key="k2", holder="w", ttl=60)
    store.tasks.finish_run(second.id, TaskState.PR_OPEN, lock_key="k2", holder="w", pr_number=41)
    await dispatch(pull_closed_event(number=41, merged=False, delivery_id="pc-2"))
    abandoned = store.tasks.get(second.id)
    assert abandoned is not None and abandoned.state == TaskState.ABANDONED
    assert abandoned.reason == "pull request #41 closed by @bob"


async def test_closing_the_issue_cancels_its_queued_tasks(
    dispatch, store: Store, repo: Repo
) -> None:
    """A closed issue needs no agent: its queued tasks are cancelled."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    await dispatch(issue_closed_event())
    [task] = store.tasks.all("acme/app")
    assert (task.state, task.reason) == (TaskState.CANCELLED, "issue closed by @alice")
