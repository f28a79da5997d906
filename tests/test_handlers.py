"""Handlers turn events into desired state: tasks queued or cancelled, installs recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.core.task_states import TaskState
from bot.github.types import Repo
from bot.store import Store
from tests.events import (
    example_config,
    installation_event,
    issue_label_event,
    pull_label_event,
)
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    repo = fake_github.add_repo("acme", "app", installation_id=7, files=example_config())
    fake_github.add_issue("acme", "app", number=12, title="Crash on empty input")
    fake_github.set_permission("acme", "app", "alice", "write")
    fake_github.set_permission("acme", "app", "trinity", "triage")
    return repo


async def test_a_trigger_label_from_a_writer_queues_the_task(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """`agent:fix-bug` by someone with write access queues fix-bug on its own branch."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    [task] = store.tasks.all("acme/app")
    assert (task.task_name, task.state, task.branch) == (
        "fix-bug",
        TaskState.QUEUED,
        "bosun/fix-bug/12",
    )
    assert (task.triggered_by, task.trigger_delivery_id) == ("alice", "d-1")
    assert task.config_sha == fake_github.branch_sha("acme", "app", "main")
    [record] = store.audit.records(repo_full_name="acme/app")
    assert (record.actor, record.action, record.delivery_id, record.config_sha) == (
        "alice",
        "task.queued",
        "d-1",
        task.config_sha,
    )
    [comment] = fake_github.comments("acme", "app", 12)
    assert "**Queued** `fix-bug` on branch `bosun/fix-bug/12`" in comment["body"]
    assert task.status_comment_id is None or task.status_comment_id == comment["id"]
    assert store.tasks.get(task.id or 0).status_comment_id == comment["id"]  # type: ignore[union-attr]
    assert prism_violations() == []


async def test_a_trigger_below_the_required_permission_is_held(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Someone with triage cannot start an agent: the task waits for `/bosun ok-to-run`."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug", sender="trinity"))
    [task] = store.tasks.all("acme/app")
    assert task.state == TaskState.HELD
    [comment] = fake_github.comments("acme", "app", 12)
    assert "**Held** `fix-bug`" in comment["body"]
    assert "@trinity has **triage** permission" in comment["body"]
    assert "needs **write** or above" in comment["body"]
    assert "`/bosun ok-to-run`" in comment["body"]
    [record] = store.audit.records(repo_full_name="acme/app")
    assert (record.actor, record.action) == ("trinity", "task.held")
    assert prism_violations() == []


async def test_someone_who_is_not_a_collaborator_is_held(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """An outsider's request never runs on its own."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug", sender="mallory"))
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.HELD]
    assert "has **none** permission" in fake_github.comments("acme", "app", 12)[0]["body"]


async def test_the_repo_policy_sets_the_permission_needed(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A policy demanding maintain holds a writer's request: the default branch's policy rules."""
    policy = example_config()[".bosun/policy.yaml"].replace(
        b"min_permission: write", b"min_permission: maintain"
    )
    fake_github.set_file("acme", "app", ".bosun/policy.yaml", policy)
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.HELD]
    assert "needs **maintain** or above" in fake_github.comments("acme", "app", 12)[0]["body"]


async def test_config_on_other_branches_has_no_effect(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A policy edited on a feature branch changes nothing until it is merged."""
    fake_github.add_branch("acme", "app", "loosen")
    loose = example_config()[".bosun/policy.yaml"].replace(
        b"min_permission: write", b"min_permission: triage"
    )
    fake_github.set_file("acme", "app", ".bosun/policy.yaml", loose, branch="loosen")
    await dispatch(issue_label_event("labeled", label="agent:fix-bug", sender="trinity"))
    assert [t.state for t in store.tasks.all("acme/app")] == [TaskState.HELD]


async def test_labels_without_the_prefix_are_not_triggers(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Ordinary labels such as `bug` do nothing and say nothing."""
    await dispatch(issue_label_event("labeled", label="bug"))
    assert store.tasks.all("acme/app") == []
    assert fake_github.comments("acme", "app", 12) == []


async def test_an_unknown_task_is_refused_with_the_list_of_tasks(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A label naming no task file gets a comment listing the tasks that exist."""
    await dispatch(issue_label_event("labeled", label="agent:make-coffee"))
    assert store.tasks.all("acme/app") == []
    body = fake_github.comments("acme", "app", 12)[0]["body"]
    assert "`add-tests`, `fix-bug`, `update-docs`" in body
    assert "make-coffee" not in body, "label text is not echoed back"


async def test_a_broken_task_file_is_named_with_its_error(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Labelling for a task whose file is invalid says which line of it is wrong."""
    fake_github.set_file("acme", "app", ".bosun/tasks/fix-bug.yaml", b"agent: coder\nprompt: x\n")
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    assert store.tasks.all("acme/app") == []
    body = fake_github.comments("acme", "app", 12)[0]["body"]
    assert "`.bosun/tasks/fix-bug.yaml` on the default branch has errors" in body
    assert "`.bosun/tasks/fix-bug.yaml:1:1: " in body


async def test_the_same_delivery_handled_twice_queues_one_task(
    dispatch, store: Store, repo: Repo
) -> None:
    """Replaying a delivery after a crash is harmless."""
    event = issue_label_event("labeled", label="agent:fix-bug")
    await dispatch(event)
    await dispatch(event)
    assert len(store.tasks.all("acme/app")) == 1


async def test_removing_the_label_cancels_the_queued_task(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """Unlabelling before the task runs cancels it and records who did it."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    await dispatch(issue_label_event("unlabeled", label="agent:fix-bug", delivery_id="d-2"))
    [task] = store.tasks.all("acme/app")
    assert task.state == TaskState.CANCELLED
    assert task.reason == "label removed by @alice"
    [comment] = fake_github.comments("acme", "app", 12)
    assert "**`fix-bug` was cancelled**: label removed by @alice" in comment["body"]
    actions = [r.action for r in store.audit.records(repo_full_name="acme/app")]
    assert actions == ["task.queued", "task.cancelled"]
    assert prism_violations() == []


async def test_a_broken_policy_without_a_good_one_refuses_and_names_the_error(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Bad YAML never runs an agent on guesswork; the comment points at file:line:col."""
    fake_github.set_file("acme", "app", ".bosun/policy.yaml", b"version: 1\nagents: [\n")
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    assert store.tasks.all("acme/app") == []
    body = fake_github.comments("acme", "app", 12)[0]["body"]
    assert "`.bosun/policy.yaml:3:1: invalid YAML" in body


async def test_a_broken_policy_keeps_the_last_good_config(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """A push that breaks the policy leaves the bot running on the last good config."""
    await dispatch(issue_label_event("labeled", label="agent:fix-bug"))
    good_sha = fake_github.branch_sha("acme", "app", "main")
    fake_github.set_file("acme", "app", ".bosun/policy.yaml", b"version: 1\nagents: 3\n")
    fake_github.add_issue("acme", "app", number=13)
    await dispatch(
        issue_label_event("labeled", label="agent:add-tests", issue_number=13, delivery_id="d-3")
    )
    tasks = store.tasks.all("acme/app")
    assert [t.task_name for t in tasks] == ["fix-bug", "add-tests"]
    assert tasks[1].config_sha == good_sha


async def test_closed_issues_do_not_queue_tasks(dispatch, store: Store, repo: Repo) -> None:
    """A label added to a closed issue starts nothing."""
    event = issue_label_event("labeled", label="agent:fix-bug")
    event.data["issue"]["state"] = "closed"
    await dispatch(event)
    assert store.tasks.all("acme/app") == []


async def test_installations_and_their_repositories_are_recorded(dispatch, store: Store) -> None:
    """Installing the App, and granting or removing repositories, is remembered and audited."""
    await dispatch(installation_event("installation", "created"))
    installation = store.installations.get(7)
    assert installation is not None and installation.status == "active"
    created = installation_event("installation", "created")
    granted = sorted(r["full_name"] for r in created.data["repositories"])
    assert store.installations.repositories(7) == granted
    added = installation_event("installation_repositories", "added", delivery_id="i-2")
    await dispatch(added)
    new = [r["full_name"] for r in added.data["repositories_added"]]
    assert set(new) <= set(store.installations.repositories(7))
    actions = [r.action for r in store.audit.records()]
    assert actions == ["installation.created", "installation_repositories.added"]


async def test_a_label_on_a_pull_request_queues_a_task_on_its_head_branch(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo, prism_violations: Violations
) -> None:
    """`agent:<task>` on a PR works on the PR's own branch, against its base."""
    fake_github.add_branch("acme", "app", "feature/login")
    number = fake_github.add_pull("acme", "app", head="feature/login")
    await dispatch(
        pull_label_event("labeled", label="agent:fix-bug", number=number, head="feature/login")
    )
    [task] = store.tasks.all("acme/app")
    assert (task.is_pull_request, task.branch, task.base_branch, task.issue_number) == (
        True,
        "feature/login",
        "main",
        number,
    )
    assert prism_violations() == []


async def test_a_label_on_a_pull_request_from_a_fork_is_refused(
    dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Bosun never pushes to someone's fork: the request is refused with a comment."""
    number = fake_github.add_pull(
        "acme", "app", head="patch-1", head_repo_full_name="mallory/app", head_sha="a" * 40
    )
    await dispatch(
        pull_label_event(
            "labeled",
            label="agent:fix-bug",
            number=number,
            head="patch-1",
            head_repo_full_name="mallory/app",
        )
    )
    assert store.tasks.all("acme/app") == []
    [comment] = fake_github.comments("acme", "app", number)
    assert "lives in a fork" in comment["body"]
    [record] = store.audit.records(repo_full_name="acme/app")
    assert record.action == "trigger.fork"
