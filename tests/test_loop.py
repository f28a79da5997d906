"""The agent loop end to end: a label becomes a pull request, a check run and one status comment.

Real parts: the store, git repositories, the bubblewrap sandbox, the scheduler and worker, the
GitHub client. At the edges: the fake GitHub behind Prism (GitHub's OpenAPI description
checks every request and answer), and a scripted model on litellm's mock responses.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.core.task_states import TaskState
from bot.store import Store
from bot.store.database import as_utc
from bot.store.tables import Task
from tests.events import example_config, issue_label_event, pull_label_event
from tests.fakegithub import FakeGitHub
from tests.loop_fixtures import (
    APPEND_LINE,
    DONE,
    FILES,
    FIX,
    Start,
    Violations,
    call,
    comment_says,
    deliver,
    eventually,
    settled,
    sleep_for,
)


@pytest.fixture
def repo(fake_github: FakeGitHub) -> None:
    fake_github.add_repo("acme", "app", installation_id=7, files=FILES, git=True)
    fake_github.add_issue("acme", "app", number=12, title="add() is wrong", body="2+3 gives -1")
    fake_github.set_permission("acme", "app", "alice", "write")


async def test_a_labelled_issue_becomes_a_pull_request_with_check_run_and_comment(
    repo: None,
    start_bosun: Start,
    live_store: Store,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """Label an issue, get a PR from bosun/<task>/<issue>, `bosun/task` on it, one comment."""
    client = await start_bosun([call("read_file", path="calc.py"), FIX, DONE])
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    [task] = await settled(live_store, 1)
    assert task.state == TaskState.PR_OPEN, task.reason

    [pull] = fake_github.pulls("acme", "app")
    assert pull["head"]["ref"] == "bosun/fix-bug/12"
    assert pull["body"].startswith("Closes #12")
    assert pull["number"] == task.pr_number
    files = fake_github.branch_files("acme", "app", "bosun/fix-bug/12")
    assert files["calc.py"] == b"def add(a, b):\n    return a + b\n"

    [check] = fake_github.check_runs("acme", "app", head_sha=pull["head"]["sha"])
    assert (check["name"], check["conclusion"]) == ("bosun/task", "success")
    summary = check["output"]["summary"]
    for figure in ("gpt-4o-mini", "tokens", "cost", "duration", "attempts", "audit id"):
        assert figure in summary
    assert "| approvals | 0 of 1 required |" in summary, "nobody has approved the new commit"

    await eventually(comment_says(fake_github, f"**Pull request #{pull['number']} is ready"))
    assert len(fake_github.comments("acme", "app", 12)) == 1
    calls = live_store.model_calls.for_task(task.id or 0)
    assert len(calls) == 3 and all(c.model == "gpt-4o-mini" for c in calls)
    assert task.cost_usd > 0 and task.tokens_in > 0
    assert live_store.leases.all() == [], "the branch lock is released"
    assert prism_violations() == []


async def test_removing_the_label_mid_run_cancels_it_and_releases_the_lock(
    repo: None,
    start_bosun: Start,
    live_store: Store,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """Unlabelling a running task stops its sandbox, says so, and frees its branch."""
    client = await start_bosun([sleep_for(600), FIX, DONE])
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    # The model has asked for the long command: the run is inside it, or about to be.
    await eventually(lambda: bool(live_store.model_calls.for_task(1)), timeout=60)
    await deliver(client, issue_label_event("unlabeled", label="agent:fix-bug", delivery_id="d-2"))
    [task] = await settled(live_store, 1)
    assert task.state == TaskState.CANCELLED
    # The command never ran out: the model was not asked for the next step.
    assert len(live_store.model_calls.for_task(1)) == 1
    assert task.reason == "label removed by @alice"
    assert fake_github.pulls("acme", "app") == []
    assert "bosun/fix-bug/12" not in fake_github.branches("acme", "app")
    await eventually(comment_says(fake_github, "**`fix-bug` was cancelled**: label removed"))
    assert len(fake_github.comments("acme", "app", 12)) == 1
    assert live_store.leases.all() == []
    assert prism_violations() == []


async def test_two_labels_on_one_pull_request_take_turns_on_its_branch(
    repo: None,
    start_bosun: Start,
    live_store: Store,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """Two tasks on one PR run one after the other on its head; another branch runs meanwhile."""
    fake_github.add_branch("acme", "app", "feature/login")
    number = fake_github.add_pull("acme", "app", head="feature/login", title="Login")
    client = await start_bosun([sleep_for(1.5), APPEND_LINE, DONE])
    for delivery_id, label in (("p-1", "agent:fix-bug"), ("p-2", "agent:add-tests")):
        event = pull_label_event(
            "labeled", label=label, number=number, head="feature/login", delivery_id=delivery_id
        )
        await deliver(client, event)
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug", delivery_id="d-9"))

    tasks = await settled(live_store, 3)
    assert [t.state for t in tasks] == [TaskState.PR_OPEN] * 3, [t.reason for t in tasks]
    pr_tasks = [t for t in tasks if t.is_pull_request]
    [issue_task] = [t for t in tasks if not t.is_pull_request]
    assert {t.branch for t in pr_tasks} == {"feature/login"}
    # As recorded: the PR's two runs one after the other, the other branch's beside one.
    runs = {task.id: run_of(live_store, task) for task in tasks}
    first, second = sorted(runs[task.id] for task in pr_tasks)
    assert first[1] <= second[0]
    assert any(overlap(runs[issue_task.id], runs[task.id]) for task in pr_tasks)
    log = fake_github.branch_files("acme", "app", "feature/login")["log.txt"]
    assert log == b"one more line\n" * 2, "the second run continued the first one's branch"
    assert len(fake_github.pulls("acme", "app")) == 2, "the PR itself, and the issue's new one"
    assert prism_violations() == []


async def test_a_change_to_a_protected_path_is_refused_and_nothing_is_pushed(
    repo: None,
    start_bosun: Start,
    live_store: Store,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """An agent that touches .github/workflows never gets its change pushed."""
    workflow = call("write_file", path=".github/workflows/ci.yml", content="on: push\n")
    client = await start_bosun([FIX, workflow, DONE])
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    [task] = await settled(live_store, 1)
    assert task.state == TaskState.FAILED
    assert "protected paths: `.github/workflows/ci.yml`" in (task.reason or "")
    assert "bosun/fix-bug/12" not in fake_github.branches("acme", "app")
    assert fake_github.pulls("acme", "app") == []
    # A broken rule is not sampled again: the default policy hands the task to people.
    await eventually(
        comment_says(fake_github, "**`fix-bug` needs a person**: refused: nothing was pushed")
    )
    assert task.failure_kind == "refused"
    assert "bosun/needs-human" in fake_github.labels("acme", "app", 12)
    assert len(fake_github.comments("acme", "app", 12)) == 2  # the status and the hand-over
    assert prism_violations() == []


def test_the_sample_config_drives_the_loop() -> None:
    """The loop tests run on a config that `bosun lint` accepts, like users' would be."""
    from bot.config.load import load_config

    assert load_config({k: v for k, v in FILES.items() if k.startswith(".bosun/")}).problems == ()
    assert example_config()


async def test_running_a_task_again_updates_the_same_pull_request_and_comment(
    repo: None,
    start_bosun: Start,
    live_store: Store,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """A second run of a task on an issue reuses its branch, its PR and its status comment."""
    client = await start_bosun([APPEND_LINE, DONE])
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug"))
    await settled(live_store, 1)
    await eventually(comment_says(fake_github, "is ready for review"))
    await deliver(client, issue_label_event("unlabeled", label="agent:fix-bug", delivery_id="d-2"))
    await deliver(client, issue_label_event("labeled", label="agent:fix-bug", delivery_id="d-3"))
    first, second = await settled(live_store, 2)
    assert second.state == TaskState.PR_OPEN, second.reason
    assert first.pr_number == second.pr_number
    [pull] = fake_github.pulls("acme", "app")
    log = fake_github.branch_files("acme", "app", "bosun/fix-bug/12")["log.txt"]
    assert log == b"one more line\n" * 2
    [comment] = fake_github.comments("acme", "app", 12)
    again = live_store.tasks.get(second.id or 0)
    assert again is not None and again.status_comment_id == comment["id"]
    runs = fake_github.check_runs("acme", "app", head_sha=pull["head"]["sha"])
    assert [run["conclusion"] for run in runs] == ["success"]
    assert prism_violations() == []


def run_of(store: Store, task: Task) -> tuple[datetime, datetime]:
    """When the task's one run was under way, as its audit records say: started to PR."""
    assert task.id is not None
    started, opened = (
        store.audit.last(task.id, "task.started"),
        store.audit.last(task.id, "task.pr_opened"),
    )
    assert started is not None and opened is not None
    return as_utc(started.at), as_utc(opened.at)


def overlap(one: tuple[datetime, datetime], other: tuple[datetime, datetime]) -> bool:
    return one[0] < other[1] and other[0] < one[1]
