"""The failure policy end to end: every failure kind, every branch of `failure.then`.

Driven by webhook deliveries into the running service (real store, sandbox, git, scheduler and
worker); GitHub is the fake behind Prism, which checks every request against GitHub's OpenAPI
description; the model is scripted per attempt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from bot.core.task_states import TaskState
from bot.store import Store
from bot.store.tables import Task
from tests.events import issue_label_event, new_task, pull_label_event, review_event
from tests.fakegithub import FakeGitHub
from tests.loop_fixtures import (
    DONE,
    FIX,
    TASK,
    Start,
    Violations,
    call,
    comment_says,
    deliver,
    eventually,
    settled,
    sleep_for,
)

BRANCH = "bosun/fix-bug/12"
READ = call("read_file", path="README.md")


def policy(failure: str, *, limits: str = "wall_seconds: 60, max_steps: 10") -> bytes:
    return f"""\
version: 1
agents:
  coder:
    runtime: builtin
    tools: [list_files, read_file, write_file, edit_file, run_command]
    commands: [python3]
    limits: {{cpu_seconds: 60, memory_mb: 1024, {limits}}}
models:
  tiers:
    small: [gpt-4o-mini]
    large: [gpt-4o]
  default_tier: small
failure:
{failure}
""".encode()


def add_repo(fake: FakeGitHub, failure: str, *, task: bytes = TASK, **limits: str) -> None:
    files = {
        "README.md": b"# app\n",
        "calc.py": b"def add(a, b):\n    return a - b\n",
        ".bosun/policy.yaml": policy(failure, **limits),
        ".bosun/tasks/fix-bug.yaml": task,
    }
    fake.add_repo("acme", "app", installation_id=7, files=files, git=True)
    fake.add_issue("acme", "app", number=12, title="add() is wrong", body="2+3 gives -1")
    fake.set_permission("acme", "app", "alice", "write")
    fake.set_permission("acme", "app", "maya", "maintain")


ABANDON = """\
  retry: {attempts: 0}
  then: abandon
"""


def actions(store: Store) -> list[str]:
    return [
        record.action
        for record in store.audit.records(repo_full_name="acme/app")
        if record.actor == "bosun" and record.action.startswith("task.")
        if record.action != "task.started"
    ]


async def run_once(start_bosun: Start, store: Store, script: Any) -> list[Task]:
    client = await start_bosun(script)
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    return await settled(store, 1, timeout=90)


# -- retry, escalate, hand over -----------------------------------------------------------


async def test_a_failed_run_is_retried_after_its_backoff_and_then_succeeds(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """Attempt 1 fails on a provider error; the retry waits its backoff, then opens the PR."""
    add_repo(fake_github, "  retry: {attempts: 1, backoff_seconds: 1}\n  then: abandon")
    script = {"attempts": [[{"error": "provider"}], [FIX, DONE]]}
    [task] = await run_once(start_bosun, live_store, script)

    assert task.state == TaskState.PR_OPEN, task.reason
    assert task.attempts == 2 and task.max_attempts == 2
    assert task.failure_kind == "agent_error"  # what the last failure was, kept for reports
    await eventually(
        lambda: actions(live_store) == ["task.retry", "task.pr_opened"]
    )  # audits follow the state
    [retry] = [r for r in live_store.audit.records() if r.action == "task.retry"]
    assert retry.detail["kind"] == "agent_error" and retry.detail["delay_seconds"] == 1.0
    assert task.not_before is not None and task.started_at is not None
    assert task.started_at >= task.not_before  # the retry did not start before its backoff
    ready = f"**Pull request #{task.pr_number} is ready for review**"
    await eventually(comment_says(fake_github, ready))
    assert len(fake_github.comments("acme", "app", 12)) == 1
    assert prism_violations() == []


async def test_retries_used_up_escalate_to_the_higher_tier_then_hand_over_to_people(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """Two failed attempts on `small`, one on `large`, then the label and the owners' mention."""
    add_repo(
        fake_github,
        """\
  retry: {attempts: 1, backoff_seconds: 0}
  then: escalate
  escalate:
    tier: large
    label: bosun/needs-human
    mention: [maya, acme/leads]
""",
    )
    [task] = await run_once(start_bosun, live_store, [{"error": "rate_limit"}])

    assert task.state == TaskState.FAILED
    assert (task.attempts, task.escalated, task.tier) == (3, True, "large")
    expected = ["task.retry", "task.escalate_tier", "task.hand_over", "task.labelled"]
    await eventually(lambda: actions(live_store) == expected)  # audits follow the state
    assert task.id is not None
    models = {call.attempt: call.model for call in live_store.model_calls.for_task(task.id)}
    assert models == {1: "gpt-4o-mini", 2: "gpt-4o-mini", 3: "gpt-4o"}
    assert "bosun/needs-human" in fake_github.labels("acme", "app", 12)
    await eventually(comment_says(fake_github, "**`fix-bug` needs a person**: agent error"))
    bodies = [c["body"] for c in fake_github.comments("acme", "app", 12)]
    [hand_over] = [body for body in bodies if "hands it to you" in body]
    assert hand_over.startswith("@maya @acme/leads: Bosun has stopped trying `fix-bug`")
    assert live_store.leases.all() == []
    assert prism_violations() == []


# -- abandon, rollback -----------------------------------------------------------------


async def test_abandon_stops_releases_the_lock_and_says_why(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """A run out of steps is abandoned: failed, no label, no retry, reason on the issue."""
    add_repo(fake_github, ABANDON, limits="wall_seconds: 60, max_steps: 2")
    script = [READ, call("list_files", path="."), READ]
    [task] = await run_once(start_bosun, live_store, script)

    assert task.state == TaskState.FAILED and task.failure_kind == "step_limit"
    await eventually(lambda: actions(live_store) == ["task.abandon"])  # audits follow the state
    assert "Abandoned: the locks are released, the branch is kept." in (task.reason or "")
    assert live_store.leases.all() == []
    assert fake_github.labels("acme", "app", 12) == []
    await eventually(comment_says(fake_github, "**`fix-bug` failed**: step limit: the agent"))
    assert prism_violations() == []


async def test_rollback_closes_the_pull_request_the_task_opened_and_deletes_its_branch(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """The PR opened, then GitHub failed while its approvals were counted: rollback leaves no
    branch and no open pull request, and a later PR-closed event ends nothing that should stay."""
    add_repo(fake_github, "  retry: {attempts: 0}\n  then: rollback")
    fake_github.fail_next("GET", r"^/repos/acme/app/pulls/\d+/reviews$", 500, times=20)
    client = await start_bosun([FIX, DONE])
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    [task] = await settled(live_store, 1, timeout=90)

    assert task.state == TaskState.FAILED and task.failure_kind == "github_error"
    assert task.created_branch
    await eventually(comment_says(fake_github, "failed and was rolled back"))
    assert BRANCH not in fake_github.branches("acme", "app")
    [pull] = fake_github.pulls("acme", "app")
    assert pull["state"] == "closed"
    [status] = [c["body"] for c in fake_github.comments("acme", "app", 12)]
    assert f"- pull request #{pull['number']} closed" in status
    assert f"- branch `{BRANCH}` deleted" in status
    await eventually(
        lambda: actions(live_store) == ["task.rollback", "task.rolled_back"]
    )  # audits follow the state
    assert live_store.leases.all() == []
    assert prism_violations() == []


async def test_a_rerun_that_fails_leaves_the_pull_request_under_review_alone(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """A re-run after "changes requested" pushed nothing and failed: the rollback takes back
    only what that run published (nothing), not the earlier run's pull request."""
    add_repo(fake_github, "  retry: {attempts: 0}\n  then: rollback")
    # Both runs play the same script: the second finds the fix made, so changes nothing.
    client = await start_bosun([FIX, DONE])
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    [first] = await settled(live_store, 1, timeout=90)
    assert first.state == TaskState.PR_OPEN and first.pr_number is not None

    review = fake_github.add_review(
        "acme", "app", first.pr_number, user="maya", state="CHANGES_REQUESTED", body="Use sum()."
    )
    await deliver(client, review_event(review, number=first.pr_number))
    rerun = (await settled(live_store, 2, timeout=90))[-1]

    assert rerun.state == TaskState.FAILED and rerun.failure_kind == "refused"
    await eventually(comment_says(fake_github, "nothing: Bosun had pushed nothing for this task"))
    assert BRANCH in fake_github.branches("acme", "app")
    assert [p["state"] for p in fake_github.pulls("acme", "app")] == ["open"]
    assert live_store.tasks.all()[0].state == TaskState.PR_OPEN
    assert prism_violations() == []


async def test_rollback_on_a_persons_pull_request_reverts_what_bosun_pushed(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """Never delete a person's branch: the task's push is undone by a revert commit."""
    add_repo(fake_github, "  retry: {attempts: 0}\n  then: rollback")
    fake_github.add_branch("acme", "app", "feature/login")
    number = fake_github.add_pull("acme", "app", head="feature/login", title="Login")
    before = fake_github.branch_files("acme", "app", "feature/login")
    fake_github.fail_next("GET", r"^/repos/acme/app/pulls/\d+/reviews$", 500, times=20)
    client = await start_bosun([FIX, DONE])
    event = pull_label_event("labeled", label="agent:fix-bug", number=number, head="feature/login")
    await deliver(client, event)
    [task] = await settled(live_store, 1, timeout=90)

    assert task.state == TaskState.FAILED and not task.created_branch
    assert task.pushed_sha is not None
    await eventually(comment_says(fake_github, "reverted on `feature/login`", number=number))
    heads = fake_github.branches("acme", "app")
    assert "feature/login" in heads and heads["feature/login"] != task.pushed_sha
    assert fake_github.branch_files("acme", "app", "feature/login") == before
    assert [p["state"] for p in fake_github.pulls("acme", "app")] == ["open"]
    assert prism_violations() == []


async def test_rollback_after_a_push_whose_pull_request_failed_deletes_the_branch(
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    """GitHub error kind: the push landed, opening the PR failed (after the client's own
    retries); the rollback takes the pushed branch away again."""
    add_repo(fake_github, "  retry: {attempts: 0}\n  then: rollback")
    fake_github.fail_next("POST", r"^/repos/acme/app/pulls$", 500, times=20)
    [task] = await run_once(start_bosun, live_store, [FIX, DONE])

    assert task.state == TaskState.FAILED and task.failure_kind == "github_error"
    assert task.pushed_sha is not None  # it had been pushed
    await eventually(comment_says(fake_github, f"- branch `{BRANCH}` deleted"))
    assert BRANCH not in fake_github.branches("acme", "app")
    assert fake_github.pulls("acme", "app") == []
    assert prism_violations() == []


# -- each failure kind ----------------------------------------------------------------------


async def test_a_run_past_its_wall_clock_is_a_sandbox_timeout(
    fake_github: FakeGitHub, start_bosun: Start, live_store: Store, prism_violations: Violations
) -> None:
    add_repo(fake_github, ABANDON, limits="wall_seconds: 2, max_steps: 10")
    [task] = await run_once(start_bosun, live_store, [sleep_for(30), DONE])

    assert task.failure_kind == "sandbox_timeout", task.reason
    assert "wall-clock limit of 2s" in (task.reason or "")
    assert live_store.leases.all() == []
    assert prism_violations() == []


async def test_a_spent_budget_is_not_retried(
    fake_github: FakeGitHub, start_bosun: Start, live_store: Store, prism_violations: Violations
) -> None:
    """Retries are left, but the budget covers every attempt: the final action comes at once."""
    task_file = TASK + b"budget_usd: 0.000001\n"
    add_repo(fake_github, "  retry: {attempts: 2}\n  then: abandon", task=task_file)
    [task] = await run_once(start_bosun, live_store, [READ, READ, READ, DONE])

    assert task.failure_kind == "budget" and task.attempts == 1
    await eventually(lambda: actions(live_store) == ["task.abandon"])  # audits follow the state
    assert prism_violations() == []


@pytest.mark.parametrize(
    ("stuck", "script", "says"),
    [
        (
            "{repeated_tool_calls: 3}",
            [READ, READ, READ, READ, DONE],
            "the same tool call 3 times in a row: read_file",
        ),
        (
            "{repeated_tool_calls: null, steps_without_change: 2}",
            [READ, call("list_files", path="."), READ, DONE],
            "the worktree did not change for 2 steps",
        ),
        ("{silent_seconds: 3}", [sleep_for(30), DONE], "no step finished for 3s"),
    ],
    ids=["repeated-call", "no-change", "silent"],
)
async def test_a_run_that_makes_no_progress_is_stopped_as_stuck(
    stuck: str,
    script: list[dict[str, Any]],
    says: str,
    fake_github: FakeGitHub,
    start_bosun: Start,
    live_store: Store,
    prism_violations: Violations,
) -> None:
    add_repo(fake_github, f"{ABANDON}  stuck: {stuck}\n")
    [task] = await run_once(start_bosun, live_store, script)

    assert task.failure_kind == "stuck", task.reason
    assert says in (task.reason or "")
    await eventually(comment_says(fake_github, "**`fix-bug` failed**: stuck:"))
    assert prism_violations() == []


async def test_a_refused_push_is_its_own_failure_kind(
    fake_github: FakeGitHub, start_bosun: Start, live_store: Store, prism_violations: Violations
) -> None:
    add_repo(fake_github, ABANDON)
    hook = Path(urlparse(fake_github.clone_url("acme", "app")).path) / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen for the release' >&2\nexit 1\n")
    hook.chmod(0o755)
    [task] = await run_once(start_bosun, live_store, [FIX, DONE])

    assert task.failure_kind == "push_refused", task.reason
    assert "pushes are frozen for the release" in (task.reason or "")
    assert BRANCH not in fake_github.branches("acme", "app")
    assert prism_violations() == []


async def test_a_lost_worker_with_no_attempts_left_gets_the_final_action(
    fake_github: FakeGitHub, start_bosun: Start, live_store: Store, prism_violations: Violations
) -> None:
    """A task whose worker died on its last attempt is not retried: the policy's `then`."""
    add_repo(fake_github, ABANDON)
    ghost_run(fake_github, live_store, attempts_allowed=1)

    await start_bosun([DONE])
    [task] = await settled(live_store, 1, timeout=30)

    assert task.state == TaskState.FAILED and task.failure_kind == "worker_lost"
    await eventually(lambda: actions(live_store) == ["task.abandon"])  # audits follow the state
    assert live_store.leases.all() == []
    await eventually(comment_says(fake_github, "**`fix-bug` failed**: worker lost"))
    assert prism_violations() == []


async def test_a_task_its_config_no_longer_defines_is_not_retried(
    fake_github: FakeGitHub, start_bosun: Start, live_store: Store, prism_violations: Violations
) -> None:
    """Invalid task: the config at the task's commit has no such task; people must fix it."""
    add_repo(fake_github, "  retry: {attempts: 2}\n  then: abandon")
    new = new_task(
        task_name="add-tests",
        branch="bosun/add-tests/12",
        config_sha=fake_github.branches("acme", "app")["main"],
    )
    assert live_store.tasks.create(new) is not None
    await start_bosun([DONE])
    [task] = await settled(live_store, 1, timeout=30)

    assert (task.state, task.failure_kind, task.attempts) == (
        TaskState.FAILED,
        "invalid_task",
        1,
    )
    assert "`add-tests` is not a valid task at config" in (task.reason or "")
    await eventually(lambda: actions(live_store) == ["task.abandon"])  # audits follow the state
    assert prism_violations() == []


async def test_a_task_cancelled_while_its_worker_was_dead_is_not_retried(
    fake_github: FakeGitHub, start_bosun: Start, live_store: Store, prism_violations: Violations
) -> None:
    add_repo(fake_github, "  retry: {attempts: 3, backoff_seconds: 0}")
    task = ghost_run(fake_github, live_store, attempts_allowed=4)
    assert task.id is not None
    live_store.tasks.request_cancel("acme/app", 12, "fix-bug", reason="cancelled by @alice")

    await start_bosun([DONE])
    [task] = await settled(live_store, 1, timeout=30)

    assert (task.state, task.reason) == (TaskState.CANCELLED, "cancelled by @alice")
    assert task.attempts == 1
    await eventually(comment_says(fake_github, "**`fix-bug` was cancelled**"))
    assert prism_violations() == []


def test_only_one_replica_ends_a_lost_run_and_never_a_newer_one(store: Store) -> None:
    """Two replicas saw the same lost run: the first ends it; the second, holding a stale
    view, touches neither it nor the run that started since."""
    task = ghost_run(None, store, attempts_allowed=3, ttl=-1)
    assert task.id is not None
    stale = {"worker_id": task.worker_id, "attempt": task.attempts}
    assert store.tasks.end_lost_run(task.id, TaskState.QUEUED, **stale, reason="worker lost")
    again = store.tasks.claim(task.id, lock_key=f"branch:acme/app:{BRANCH}", holder="w2", ttl=60)
    assert again is not None
    assert not store.tasks.end_lost_run(task.id, TaskState.QUEUED, **stale, reason="worker lost")
    current = store.tasks.get(task.id)
    assert current is not None
    assert (current.state, current.worker_id, current.attempts) == (TaskState.RUNNING, "w2", 2)
    assert [lease.holder for lease in store.leases.all()] == ["w2"]


def ghost_run(
    fake: FakeGitHub | None, store: Store, *, attempts_allowed: int, ttl: float = -1
) -> Task:
    """A run whose worker died: running, its lease lapsed already."""
    sha = fake.branches("acme", "app")["main"] if fake is not None else "0" * 40
    new = new_task(trigger_delivery_id="d-ghost", config_sha=sha, max_attempts=attempts_allowed)
    created = store.tasks.create(new)
    assert created is not None and created.id is not None
    lease = {"lock_key": f"branch:acme/app:{BRANCH}", "holder": "dead-worker", "ttl": ttl}
    claimed = store.tasks.claim(created.id, **lease)
    assert claimed is not None
    return claimed
