"""Auto-merge of approved, green agent pull requests; agent branches of closed ones deleted."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from gidgethub import sansio

from bot.config.load import parse_file
from bot.config.models import Policy
from bot.core.task_states import TaskState
from bot.github.types import Repo
from bot.handlers.merge import CheckRunState, MergeFacts, merge_verdict
from bot.store import Store
from bot.store.tables import Task
from tests.events import (
    example_config,
    issue_label_event,
    new_task,
    pull_closed_event,
    pull_label_event,
    review_event,
)
from tests.fakegithub import FakeGitHub
from tests.webhook_examples import examples

Violations = Callable[[], list[str]]
BRANCH = "bosun/fix-bug/12"
POLICY = ".bosun/policy.yaml"
REVIEW = b"  auto_merge: false\n"
AUTO_MERGE = b"  auto_merge: true\n  merge_method: rebase\n"


def config(review: bytes = AUTO_MERGE) -> dict[str, bytes]:
    """The sample `.bosun/` with the `review` section's last line replaced by `review`."""
    files = example_config()
    assert REVIEW in files[POLICY]
    files[POLICY] = files[POLICY].replace(REVIEW, review)
    return files


def seed(fake: FakeGitHub, files: dict[str, bytes]) -> Repo:
    repo = fake.add_repo("acme", "app", installation_id=7, files=files)
    fake.add_issue("acme", "app", number=12, title="Crash on empty input")
    for user, role in [("alice", "write"), ("bob", "write"), ("maya", "maintain")]:
        fake.set_permission("acme", "app", user, role)
    return repo


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    """acme/app under the sample policy with `review.auto_merge: true`, merging by rebase."""
    return seed(fake_github, config())


async def agent_pull(dispatch, store: Store, fake: FakeGitHub) -> tuple[Task, int, str]:
    """Alice labels issue 12; the agent's PR from `bosun/fix-bug/12` is open for review."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    [task] = store.tasks.all("acme/app")
    assert task.id is not None
    fake.add_branch("acme", "app", BRANCH)
    sha = fake.set_file("acme", "app", "fix.py", b"fixed = True\n", branch=BRANCH)
    number = fake.add_pull("acme", "app", head=BRANCH, user="bosun[bot]")
    store.tasks.claim(task.id, lock_key="k", holder="w", ttl=60)
    store.tasks.finish_run(
        task.id, TaskState.PR_OPEN, lock_key="k", holder="w", pr_number=number, head_sha=sha
    )
    return task, number, sha


async def approve(
    dispatch, fake: FakeGitHub, number: int, *, user: str = "bob", delivery_id: str = "r-1"
) -> None:
    review = fake.add_review("acme", "app", number, user=user, state="APPROVED")
    await dispatch(review_event(review, number=number, delivery_id=delivery_id))


def merge_requests(fake: FakeGitHub) -> list[str]:
    return [
        r.raw_path for r in fake.requests if r.method == "PUT" and r.raw_path.endswith("/merge")
    ]


def audits(store: Store, action: str) -> list[dict[str, Any]]:
    return [
        {"actor": record.actor, "task_id": record.task_id, **record.detail}
        for record in store.audit.records(repo_full_name="acme/app")
        if record.action == action
    ]


@cache
def _recorded(event: str, action: str | None) -> dict[str, Any]:
    """The first of GitHub's recorded deliveries of this event and action."""
    return next(
        e.payload for e in examples() if e.event == event and e.payload.get("action") == action
    )


def _addressed(data: dict[str, Any]) -> dict[str, Any]:
    data["repository"] = {
        **data.get("repository", _recorded("check_run", "completed")["repository"]),
        "name": "app",
        "full_name": "acme/app",
        "default_branch": "main",
    }
    data["repository"]["owner"] = {**data["repository"]["owner"], "login": "acme"}
    data["installation"] = {"id": 7, "node_id": "MDIzOkludGVncmF0aW9u"}
    return data


def check_event(
    kind: str, head_sha: str, *, conclusion: str = "success", delivery_id: str = "ck-1"
) -> sansio.Event:
    """A `check_run.completed` or `check_suite.completed` delivery for `head_sha`."""
    data = copy.deepcopy(_recorded(kind, "completed"))
    data[kind].update(head_sha=head_sha, status="completed", conclusion=conclusion)
    return sansio.Event(_addressed(data), event=kind, delivery_id=delivery_id)


def status_event(sha: str, *, state: str = "success", delivery_id: str = "st-1") -> sansio.Event:
    data = copy.deepcopy(_recorded("status", None))
    data.update(sha=sha, state=state, context="ci/build")
    return sansio.Event(_addressed(data), event="status", delivery_id=delivery_id)


def closed_event(number: int, *, head: str, merged: bool = False) -> sansio.Event:
    event = pull_label_event("labeled", label="x", number=number, head=head, sender="bob")
    data = copy.deepcopy(event.data)
    data["action"] = "closed"
    data.pop("label")
    data["pull_request"].update(state="closed", merged=merged)
    return sansio.Event(data, event="pull_request", delivery_id="pc-1")


# Merging


async def test_an_approved_agent_pull_request_with_green_checks_is_merged(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """The approval that completes `required_approvals`, with every check and status green,
    merges the agent's commit by the policy's method; GitHub's `closed` then marks it done."""
    task, number, sha = await agent_pull(dispatch, store, fake_github)
    fake_github.add_check_run("acme", "app", sha, check_name="ci/test")
    fake_github.add_check_run("acme", "app", sha, check_name="ci/lint", conclusion="skipped")
    fake_github.add_status("acme", "app", sha, state="success")
    await approve(dispatch, fake_github, number)

    assert merge_requests(fake_github) == [f"/repos/acme/app/pulls/{number}/merge"]
    assert fake_github.merge_method("acme", "app", number) == "rebase"
    [pull] = fake_github.pulls("acme", "app")
    assert (pull["merged"], pull["head"]["sha"]) == (True, sha)
    assert fake_github.branch_files("acme", "app", "main")["fix.py"] == b"fixed = True\n"
    [merged] = audits(store, "task.auto_merged")
    assert (merged["actor"], merged["task_id"], merged["pr"]) == ("bosun", task.id, number)
    assert (merged["sha"], merged["merge_method"]) == (sha, "rebase")

    await dispatch(pull_closed_event(number=number, merged=True, sender="bosun[bot]"))
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.DONE]
    assert BRANCH in fake_github.branches("acme", "app")  # a merged branch is not deleted
    assert prism_violations() == []


async def test_nothing_is_merged_while_auto_merge_is_off(
    dispatch, store: Store, fake_github: FakeGitHub, prism_violations: Violations
) -> None:
    """The sample policy leaves `auto_merge` off: people merge, whatever the approvals."""
    seed(fake_github, config(REVIEW))
    _, number, sha = await agent_pull(dispatch, store, fake_github)
    await approve(dispatch, fake_github, number)
    await dispatch(check_event("check_run", sha))
    assert merge_requests(fake_github) == []
    assert audits(store, "task.auto_merged") == []
    assert prism_violations() == []


async def test_an_approval_of_an_earlier_push_does_not_merge(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """An approval before the agent's latest push does not count for the new commit."""
    task, number, _ = await agent_pull(dispatch, store, fake_github)
    stale = fake_github.add_review("acme", "app", number, user="bob", state="APPROVED")
    head = fake_github.set_file("acme", "app", "fix.py", b"fixed = 1\n", branch=BRANCH)
    assert task.id is not None
    store.tasks.update(task.id, head_sha=head)  # the agent's latest push
    await dispatch(review_event(stale, number=number))
    await dispatch(check_event("check_run", head))
    assert merge_requests(fake_github) == []

    await approve(dispatch, fake_github, number, user="maya", delivery_id="r-2")
    assert fake_github.merge_method("acme", "app", number) == "rebase"
    assert prism_violations() == []


async def test_the_requesters_own_approval_does_not_merge(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Alice asked for the work: her approval is not the second pair of eyes."""
    _, number, _ = await agent_pull(dispatch, store, fake_github)
    await approve(dispatch, fake_github, number, user="alice")
    assert merge_requests(fake_github) == []
    assert prism_violations() == []


@pytest.mark.parametrize(
    "blocker",
    ["check in progress", "check failed", "check timed out", "status failed", "status pending"],
)
async def test_nothing_is_merged_until_every_check_and_status_passes(
    blocker: str,
    dispatch,
    store: Store,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """A check run still running or not passing, or a commit status not green, holds it."""
    _, number, sha = await agent_pull(dispatch, store, fake_github)
    fake_github.add_check_run("acme", "app", sha, check_name="ci/lint", conclusion="neutral")
    if blocker == "check in progress":
        fake_github.add_check_run("acme", "app", sha, status="in_progress", conclusion=None)
    elif blocker == "check failed":
        fake_github.add_check_run("acme", "app", sha, conclusion="failure")
    elif blocker == "check timed out":
        fake_github.add_check_run("acme", "app", sha, conclusion="timed_out")
    elif blocker == "status failed":
        fake_github.add_status("acme", "app", sha, state="success", context="ci/docs")
        fake_github.add_status("acme", "app", sha, state="failure")
    else:
        fake_github.add_status("acme", "app", sha, state="pending")
    await approve(dispatch, fake_github, number)
    await dispatch(check_event("check_suite", sha))
    await dispatch(status_event(sha))
    assert merge_requests(fake_github) == []
    assert audits(store, "task.auto_merged") == []
    assert prism_violations() == []


@pytest.mark.parametrize("trigger", ["check_run", "check_suite", "status"])
async def test_the_last_green_check_or_status_merges_an_approved_pull_request(
    trigger: str,
    dispatch,
    store: Store,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """Approved while CI runs: CI finishing on the agent's commit merges it."""
    _, number, sha = await agent_pull(dispatch, store, fake_github)
    if trigger == "status":
        fake_github.add_status("acme", "app", sha, state="pending")
    else:
        fake_github.add_check_run("acme", "app", sha, status="in_progress", conclusion=None)
    await approve(dispatch, fake_github, number)
    assert merge_requests(fake_github) == []

    if trigger == "status":
        fake_github.add_status("acme", "app", sha, state="success")
        await dispatch(status_event(sha))
    else:
        fake_github.add_check_run("acme", "app", sha, conclusion="success")  # the same run, done
        await dispatch(check_event(trigger, sha))
    assert fake_github.merge_method("acme", "app", number) == "rebase"
    assert len(audits(store, "task.auto_merged")) == 1
    assert prism_violations() == []


async def test_checks_on_another_commit_merge_nothing(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """A check of a commit no open agent pull request is at asks GitHub nothing."""
    await agent_pull(dispatch, store, fake_github)
    before = len(fake_github.requests)
    await dispatch(check_event("check_run", "0" * 40))
    await dispatch(status_event("0" * 40))
    assert len(fake_github.requests) == before
    assert prism_violations() == []


async def test_nothing_is_merged_once_someone_else_pushed(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """A push to the branch after the agent's is not what Bosun vouches for: no merge."""
    _, number, _ = await agent_pull(dispatch, store, fake_github)
    pushed = fake_github.set_file("acme", "app", "extra.py", b"x = 1\n", branch=BRANCH)
    await approve(dispatch, fake_github, number)  # an approval of the newer commit
    await dispatch(check_event("check_run", pushed))
    assert merge_requests(fake_github) == []
    assert prism_violations() == []


async def test_nothing_is_merged_while_the_agent_runs_again(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Maya approves while a re-run Bob asked for is queued: it will push again, so wait."""
    _, number, _ = await agent_pull(dispatch, store, fake_github)
    changes = fake_github.add_review(
        "acme", "app", number, user="bob", state="CHANGES_REQUESTED", body="Rename it."
    )
    await dispatch(review_event(changes, number=number, delivery_id="r-0"))
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.PR_OPEN, TaskState.QUEUED]
    await approve(dispatch, fake_github, number, user="maya")
    assert merge_requests(fake_github) == []
    assert prism_violations() == []


async def test_a_refused_merge_is_audited_and_the_delivery_survives(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """GitHub's 405 (say, a protected branch) is recorded with its reason; nothing raises."""
    task, number, sha = await agent_pull(dispatch, store, fake_github)
    fake_github.fail_next(
        "PUT", r"/merge$", 405, body={"message": "Required status check is expected."}
    )
    await approve(dispatch, fake_github, number)
    assert merge_requests(fake_github) == [f"/repos/acme/app/pulls/{number}/merge"]
    [refused] = audits(store, "task.auto_merge_refused")
    assert (refused["actor"], refused["task_id"], refused["sha"]) == ("bosun", task.id, sha)
    assert refused["status_code"] == 405
    assert "Required status check is expected." in refused["reason"]
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.PR_OPEN]
    assert fake_github.pulls("acme", "app")[0]["state"] == "open"
    assert prism_violations() == []


def test_auto_merge_without_required_approvals_is_an_error_at_auto_merge() -> None:
    """Bosun merges only after a person approves: `required_approvals: 0` cannot auto-merge."""
    text = config(AUTO_MERGE)[POLICY].replace(
        b"  required_approvals: 1\n", b"  required_approvals: 0\n"
    )
    problems = parse_file(POLICY, text, Policy)
    assert isinstance(problems, list)
    line = text.decode().splitlines().index("  auto_merge: true") + 1
    assert [str(problem) for problem in problems] == [
        f"{POLICY}:{line}:3: review.auto_merge: needs required_approvals of at least 1: "
        "Bosun merges only after a person approves"
    ]
    zero = parse_file(POLICY, text.replace(b"auto_merge: true", b"auto_merge: false"), Policy)
    assert not isinstance(zero, list)
    assert zero.model.review.merge_method == "rebase"


# Branches of pull requests closed unmerged


async def test_the_agents_branch_is_deleted_when_its_pull_request_is_closed_unmerged(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Closed unmerged: the task is abandoned and its `bosun/` branch deleted, once."""
    task, number, _ = await agent_pull(dispatch, store, fake_github)
    await dispatch(pull_closed_event(number=number, merged=False))
    assert BRANCH not in fake_github.branches("acme", "app")
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.ABANDONED]
    [deleted] = audits(store, "branch.deleted")
    assert deleted == {"actor": "bosun", "task_id": task.id, "branch": BRANCH, "pr": number}

    await dispatch(pull_closed_event(number=number, merged=False, delivery_id="pc-2"))
    assert len(audits(store, "branch.deleted")) == 1  # gone already: no error, no record
    assert prism_violations() == []


async def test_a_persons_branch_is_never_deleted(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """A task that ran on Maya's pull request leaves her branch alone, even named `bosun/`."""
    head = "bosun/by-hand"
    fake_github.add_branch("acme", "app", head)
    sha = fake_github.set_file("acme", "app", "mine.py", b"mine = 1\n", branch=head)
    number = fake_github.add_pull("acme", "app", head=head, user="maya")
    await dispatch(pull_label_event("labeled", label="agent:fix-bug", number=number, head=head))
    [task] = store.tasks.all("acme/app")
    assert task.id is not None and task.is_pull_request
    store.tasks.claim(task.id, lock_key="k", holder="w", ttl=60)
    store.tasks.finish_run(
        task.id, TaskState.PR_OPEN, lock_key="k", holder="w", pr_number=number, head_sha=sha
    )
    await dispatch(closed_event(number, head=head))
    assert head in fake_github.branches("acme", "app")
    assert audits(store, "branch.deleted") == []
    assert prism_violations() == []


async def test_the_branch_is_kept_when_the_policy_says_so(
    dispatch, store: Store, fake_github: FakeGitHub, prism_violations: Violations
) -> None:
    """`review.delete_branch_on_close: false` keeps the agent's branch of a closed PR."""
    seed(fake_github, config(REVIEW + b"  delete_branch_on_close: false\n"))
    _, number, _ = await agent_pull(dispatch, store, fake_github)
    await dispatch(pull_closed_event(number=number, merged=False))
    assert BRANCH in fake_github.branches("acme", "app")
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.ABANDONED]
    assert audits(store, "branch.deleted") == []
    assert prism_violations() == []


def test_open_pull_tasks_at_finds_only_open_agent_pull_requests_at_that_commit(
    store: Store,
) -> None:
    """The query that maps a check or status to the pull requests it may complete."""
    ids = []
    for issue, sha in [(1, "a" * 40), (2, "a" * 40), (3, "b" * 40)]:
        new = new_task(
            issue_number=issue,
            branch=f"bosun/fix-bug/{issue}",
            trigger_delivery_id=f"d-{issue}",
            config_sha=None,
        )
        created = store.tasks.create(new)
        assert created is not None and created.id is not None
        lock = f"k{issue}"
        store.tasks.claim(created.id, lock_key=lock, holder="w", ttl=60)
        store.tasks.finish_run(
            created.id,
            TaskState.PR_OPEN,
            lock_key=lock,
            holder="w",
            pr_number=100 + issue,
            head_sha=sha,
        )
        ids.append(created.id)
    store.tasks.transition(ids[1], TaskState.PR_OPEN, TaskState.ABANDONED, reason="closed")
    assert [t.id for t in store.tasks.open_pulls_at("acme/app", "a" * 40)] == [ids[0]]
    assert store.tasks.open_pulls_at("acme/other", "a" * 40) == []


# The decision itself

GREEN = MergeFacts(
    auto_merge=True,
    required_approvals=1,
    approvals=1,
    pull_open=True,
    draft=False,
    pull_head_sha="a" * 40,
    agent_head_sha="a" * 40,
    agent_working=False,
    check_runs=[
        CheckRunState("bosun/task", "completed", "success"),
        CheckRunState("ci/lint", "completed", "neutral"),
        CheckRunState("ci/docs", "completed", "skipped"),
    ],
    status_state="success",
    status_count=2,
)


def test_approved_and_green_may_merge() -> None:
    assert merge_verdict(GREEN).merge
    # No statuses at all: GitHub says pending with a count of 0, and nothing is waiting.
    no_statuses = dataclasses.replace(GREEN, status_state="pending", status_count=0, check_runs=[])
    assert merge_verdict(no_statuses).merge


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"auto_merge": False}, "review.auto_merge is off"),
        ({"pull_open": False}, "the pull request is not open"),
        ({"draft": True}, "the pull request is a draft"),
        ({"pull_head_sha": "b" * 40}, "the head moved to bbbbbbb after the agent's push"),
        ({"agent_working": True}, "an agent is still working on the branch"),
        ({"approvals": 1, "required_approvals": 2}, "approvals: 1 of 2 required"),
        ({"approvals": 0, "required_approvals": 0}, "approvals: 0 of 1 required"),
        (
            {"check_runs": [CheckRunState("ci/test", "queued", None)]},
            "check run ci/test is queued",
        ),
        (
            {"check_runs": [CheckRunState("ci/test", "completed", "action_required")]},
            "check run ci/test concluded action_required",
        ),
        (
            {"check_runs": [CheckRunState("bosun/task", "completed", "failure")]},
            "check run bosun/task concluded failure",
        ),
        ({"status_state": "pending"}, "the combined commit status is pending"),
        ({"status_state": "failure"}, "the combined commit status is failure"),
    ],
)
def test_each_missing_condition_holds_the_merge_and_says_why(
    change: dict[str, Any], reason: str
) -> None:
    verdict = merge_verdict(dataclasses.replace(GREEN, **change))
    assert (verdict.merge, verdict.reason) == (False, reason)
