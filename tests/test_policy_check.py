"""`bosun/policy` on pull requests that change `.bosun/`: problems as annotations at
file:line:col, the effective policy's diff, and what the change does to live tasks."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from gidgethub import sansio

from bot.github.client import GitHubClient
from bot.github.types import Repo
from bot.store import NewTask, Store
from tests.dispatch import Dispatch, dispatcher
from tests.events import EXAMPLES, example_config
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]
POLICY = ".bosun/policy.yaml"


@cache
def _recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{name}.json").read_text())
    return data


def pull_event(
    action: str,
    *,
    number: int,
    head: str,
    head_sha: str,
    owner: str = "acme",
    repo: str = "app",
    installation_id: int = 7,
    delivery_id: str = "pr-1",
) -> sansio.Event:
    """A `pull_request.opened` / `.synchronize` / `.reopened` delivery from branch `head`."""
    data = copy.deepcopy(
        _recorded("pull_request.opened" if action == "reopened" else f"pull_request.{action}")
    )
    data["action"] = action
    full_name = f"{owner}/{repo}"
    data["number"] = number
    pull = data["pull_request"]
    pull.update(number=number, state="open")
    pull["head"].update(ref=head, sha=head_sha)
    pull["head"]["repo"] = {**pull["head"]["repo"], "full_name": full_name}
    pull["base"].update(ref="main")
    data["repository"].update(name=repo, full_name=full_name, default_branch="main")
    data["repository"]["owner"]["login"] = owner
    data["installation"] = {"id": installation_id, "node_id": "MDIzOkludGVncmF0aW9u"}
    return sansio.Event(data, event="pull_request", delivery_id=delivery_id)


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    repo = fake_github.add_repo("acme", "app", installation_id=7, files=example_config(), git=True)
    fake_github.set_permission("acme", "app", "alice", "write")
    return repo


@pytest.fixture
def dispatch(store: Store, github_via_prism: GitHubClient, clock: FakeClock) -> Dispatch:
    return dispatcher(store, github_via_prism, clock)


def propose(
    fake: FakeGitHub, branch: str, changes: dict[str, bytes], owner: str = "acme", name: str = "app"
) -> tuple[int, str]:
    """A branch off main with `changes` committed, and a pull request from it."""
    fake.add_branch(owner, name, branch)
    sha = ""
    for path, content in changes.items():
        sha = fake.set_file(owner, name, path, content, branch=branch)
    return fake.add_pull(owner, name, head=branch), sha


def edited_policy(*replacements: tuple[bytes, bytes]) -> bytes:
    policy = example_config()[POLICY]
    for old, new in replacements:
        assert old in policy
        policy = policy.replace(old, new)
    return policy


async def test_an_invalid_policy_fails_with_an_annotation_at_each_problem(
    dispatch: Dispatch, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Each problem is an annotation at its exact file:line:col; the check fails."""
    broken = edited_policy(
        (b"per_task_usd: 3.0", b"per_task_usd: lots"),
        (b"  auto_merge: false", b"  auto_merge: false\n  automerge: true"),
    )
    number, sha = propose(fake_github, "tighten", {POLICY: broken})
    await dispatch(pull_event("opened", number=number, head="tighten", head_sha=sha))

    [run] = fake_github.check_runs("acme", "app", head_sha=sha)
    assert (run["name"], run["status"], run["conclusion"]) == (
        "bosun/policy",
        "completed",
        "failure",
    )
    assert run["output"]["title"] == "2 problems in .bosun/"
    annotations = fake_github.annotations("acme", "app", run["id"])
    assert [
        (a["path"], a["start_line"], a["end_line"], a["start_column"], a["end_column"])
        for a in annotations
    ] == [(POLICY, 41, 41, 3, 3), (POLICY, 62, 62, 3, 3)]
    assert {a["annotation_level"] for a in annotations} == {"failure"}
    assert (
        annotations[1]["message"]
        == "unknown key 'automerge' in review (did you mean 'auto_merge'?)"
    )
    assert "`.bosun/policy.yaml:41:3: budgets.per_task_usd:" in run["output"]["summary"]
    assert prism_violations() == []


async def test_a_valid_change_succeeds_with_the_diff_and_its_effect_on_live_tasks(
    dispatch: Dispatch,
    store: Store,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """The summary shows each effective value before → after, and which queued or running
    tasks the change would hold or stop."""
    main = fake_github.branch_sha("acme", "app", "main")
    spent = _queue(store, issue=3, sha=main)
    held = _queue(store, issue=4, sha=main)
    store.tasks.update(spent, cost_usd=1.2)
    task = example_config()[".bosun/tasks/fix-bug.yaml"].replace(
        b"budget_usd: 2.5", b"budget_usd: 1"
    )
    tightened = edited_policy(
        (b"per_task_usd: 3.0", b"per_task_usd: 2.5"),
        (b"  min_permission: write", b"  min_permission: maintain"),
    )
    number, sha = propose(
        fake_github, "budget", {POLICY: tightened, ".bosun/tasks/fix-bug.yaml": task}
    )
    await dispatch(pull_event("synchronize", number=number, head="budget", head_sha=sha))

    [run] = fake_github.check_runs("acme", "app", head_sha=sha)
    assert (run["conclusion"], run["output"]["title"]) == ("success", "Valid policy")
    assert fake_github.annotations("acme", "app", run["id"]) == []
    summary = run["output"]["summary"]
    assert "- `triggers.min_permission: write → maintain`" in summary
    assert "- `budgets.per_task_usd: 3.0 → 2.5`" in summary
    assert f"#3 fix-bug (queued, task {spent}): stop: budget 1 USD is at or below" in summary
    assert f"#4 fix-bug (queued, task {held}): hold: triggered by 'write'" in summary
    assert prism_violations() == []


async def test_a_pull_request_that_leaves_bosun_alone_gets_no_check_run(
    dispatch: Dispatch, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Only changes under `.bosun/` are checked; other pull requests see nothing from it."""
    number, sha = propose(fake_github, "docs", {"README.md": b"# app\n"})
    await dispatch(pull_event("opened", number=number, head="docs", head_sha=sha))
    assert fake_github.check_runs("acme", "app") == []
    assert prism_violations() == []


async def test_a_second_push_to_the_pull_request_gets_its_own_check_run(
    dispatch: Dispatch, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Each head commit is judged on its own: a fix turns the check green on the new head."""
    broken = edited_policy((b"per_task_usd: 3.0", b"per_task_usd: -1"))
    number, first = propose(fake_github, "fix", {POLICY: broken})
    await dispatch(pull_event("opened", number=number, head="fix", head_sha=first))
    fixed = edited_policy((b"per_task_usd: 3.0", b"per_task_usd: 2.5"))
    second = fake_github.set_file("acme", "app", POLICY, fixed, branch="fix")
    await dispatch(pull_event("synchronize", number=number, head="fix", head_sha=second))
    [failed] = fake_github.check_runs("acme", "app", head_sha=first)
    [passed] = fake_github.check_runs("acme", "app", head_sha=second)
    assert (failed["conclusion"], passed["conclusion"]) == ("failure", "success")
    assert "- `budgets.per_task_usd: 3.0 → 2.5`" in passed["output"]["summary"]


async def test_the_org_policy_is_checked_as_ceilings_over_every_repository(
    dispatch: Dispatch,
    store: Store,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """A pull request to the org's `.github` repo is validated as the org policy, and the
    simulation covers the live tasks of every repository of the installation."""
    org_policy = example_config()[POLICY]
    fake_github.add_repo("acme", ".github", installation_id=7, files={POLICY: org_policy})
    store.installations.set_repositories(7, added=["acme/app", "acme/.github"], removed=[])
    main = fake_github.branch_sha("acme", "app", "main")
    task = _queue(store, issue=9, sha=main)
    store.tasks.update(task, cost_usd=1.0)
    lowered = edited_policy((b"per_task_usd: 3.0", b"per_task_usd: 0.5"))
    number, sha = propose(fake_github, "cap", {POLICY: lowered}, name=".github")
    await dispatch(pull_event("opened", number=number, head="cap", head_sha=sha, repo=".github"))
    [run] = fake_github.check_runs("acme", ".github", head_sha=sha)
    assert (run["conclusion"], run["output"]["title"]) == ("success", "Valid org policy")
    summary = run["output"]["summary"]
    assert "- `budgets.per_task_usd: 3.0 → 0.5`" in summary
    assert "**acme/app**" in summary
    # fix-bug asks for 2.5 USD: over the new ceiling, it no longer validates in acme/app.
    assert f"#9 fix-bug (queued, task {task}): stop: task no longer defined" in summary

    bad = edited_policy((b"version: 1", b"version: 2"))
    number, sha = propose(fake_github, "typo", {POLICY: bad}, name=".github")
    await dispatch(pull_event("opened", number=number, head="typo", head_sha=sha, repo=".github"))
    [run] = fake_github.check_runs("acme", ".github", head_sha=sha)
    [annotation] = fake_github.annotations("acme", ".github", run["id"])
    assert (annotation["path"], annotation["start_line"], annotation["start_column"]) == (
        POLICY,
        3,
        1,
    )
    assert annotation["message"].startswith("version: Input should be 1")
    assert prism_violations() == []


def _queue(store: Store, *, issue: int, sha: str) -> int:
    task = store.tasks.create(
        NewTask(
            installation_id=7,
            repo_full_name="acme/app",
            issue_number=issue,
            is_pull_request=False,
            task_name="fix-bug",
            branch=f"bosun/fix-bug/{issue}",
            triggered_by="alice",
            trigger_delivery_id=f"d-{issue}",
            config_sha=sha,
        )
    )
    assert task is not None and task.id is not None
    return task.id
