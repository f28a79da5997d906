"""Config reloads on push: a valid `.bosun/` becomes the last good config; a broken one is
refused on its commit with precise errors, and Bosun keeps serving the last good one, across
restarts too."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from gidgethub import sansio

from bot.config.source import ConfigProvider
from bot.github.client import GitHubClient
from bot.github.types import Repo
from bot.store import Store
from tests.dispatch import Dispatch, dispatcher
from tests.events import EXAMPLES, example_config, issue_label_event
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]
POLICY = ".bosun/policy.yaml"
GOOD = example_config()[POLICY]

BAD_YAML = {
    "syntax error": (
        GOOD.replace(b"  min_permission: write", b"  min_permission: [write"),
        ".bosun/policy.yaml:8:23: invalid YAML: while parsing a flow sequence at 7:19, "
        "did not find expected ',' or ']'",
    ),
    "wrong type": (
        GOOD.replace(b"per_task_usd: 3.0", b"per_task_usd: lots"),
        ".bosun/policy.yaml:41:3: budgets.per_task_usd: Input should be a valid number, "
        "unable to parse string as a number",
    ),
    "unknown key": (
        GOOD.replace(b"  auto_merge: false", b"  auto_merge: false\n  automerge: true"),
        ".bosun/policy.yaml:62:3: unknown key 'automerge' in review (did you mean 'auto_merge'?)",
    ),
    "duplicate key": (
        GOOD.replace(
            b"  default_tier: standard", b"  default_tier: standard\n  default_tier: small"
        ),
        ".bosun/policy.yaml:33:3: duplicate key 'default_tier' (first at 32:3)",
    ),
    "yaml bomb": (
        b"version: 1\n"
        b"a: &a [x, x, x, x, x, x, x, x, x]\n"
        b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
        ".bosun/policy.yaml:2:11: alias expansion too large: over 10000 values",
    ),
    "10 MiB file": (
        b"# padding\n" * (1 << 20),
        ".bosun/policy.yaml:1:1: file is over the 1 MiB limit; refused",
    ),
    "not UTF-8": (
        b"version: 1\n# caf\xe9\n",
        ".bosun/policy.yaml:2:6: file is not UTF-8: invalid byte 0xe9 at offset 16",
    ),
}


def push_event(
    sha: str,
    *,
    before: str,
    paths: list[str],
    owner: str = "acme",
    repo: str = "app",
    ref: str = "refs/heads/main",
    delivery_id: str = "push-1",
) -> sansio.Event:
    """A `push` delivery of one commit that modifies `paths`."""
    data: dict[str, Any] = copy.deepcopy(
        json.loads((EXAMPLES / "events" / "push.json").read_text())
    )
    full_name = f"{owner}/{repo}"
    data.update(ref=ref, before=before, after=sha, created=False, deleted=False)
    [commit] = data["commits"]
    commit.update(id=sha, added=[], removed=[], modified=paths)
    data["commits"] = [commit]
    data["head_commit"] = commit
    data["repository"].update(
        name=repo, full_name=full_name, default_branch="main", master_branch="main"
    )
    data["repository"]["owner"].update(login=owner, name=owner)
    data["installation"] = {"id": 7, "node_id": "MDIzOkludGVncmF0aW9u"}
    return sansio.Event(data, event="push", delivery_id=delivery_id)


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    repo = fake_github.add_repo("acme", "app", installation_id=7, files=example_config(), git=True)
    fake_github.add_issue("acme", "app", number=12, title="Crash on empty input")
    fake_github.set_permission("acme", "app", "alice", "write")
    return repo


@pytest.fixture
def dispatch(store: Store, github_via_prism: GitHubClient, clock: FakeClock) -> Dispatch:
    return dispatcher(store, github_via_prism, clock)


async def push_file(
    dispatch: Dispatch, fake: FakeGitHub, content: bytes, *, delivery_id: str
) -> str:
    before = fake.branch_sha("acme", "app", "main")
    sha = fake.set_file("acme", "app", POLICY, content)
    await dispatch(push_event(sha, before=before, paths=[POLICY], delivery_id=delivery_id))
    return sha


async def test_a_valid_push_becomes_the_last_good_config(
    dispatch: Dispatch,
    store: Store,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """A valid `.bosun/` pushed to the default branch is accepted, audited and remembered."""
    tightened = GOOD.replace(b"per_task_usd: 3.0", b"per_task_usd: 2.5")
    sha = await push_file(dispatch, fake_github, tightened, delivery_id="push-ok")
    [record] = store.audit.records(repo_full_name="acme/app")
    assert (record.action, record.config_sha, record.delivery_id) == (
        "config.accepted",
        sha,
        "push-ok",
    )
    assert store.configs.last_good("acme/app") == sha
    assert fake_github.check_runs("acme", "app") == []
    assert prism_violations() == []


async def test_a_broken_push_is_refused_and_the_last_good_config_keeps_serving(
    store: Store,
    github_via_prism: GitHubClient,
    clock: FakeClock,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """The broken commit gets a failing `bosun/policy` with the error at its line and column
    and a `config.rejected` record; the next label still queues under the last good config,
    also after a restart."""
    dispatch = dispatcher(store, github_via_prism, clock)
    good = await push_file(
        dispatch,
        fake_github,
        GOOD.replace(b"per_task_usd: 3.0", b"per_task_usd: 2.5"),
        delivery_id="push-good",
    )
    broken = await push_file(
        dispatch,
        fake_github,
        GOOD.replace(b"  min_permission: write", b"  min_permission: writer"),
        delivery_id="push-bad",
    )

    [run] = fake_github.check_runs("acme", "app", head_sha=broken)
    assert (run["name"], run["conclusion"]) == ("bosun/policy", "failure")
    assert f"from commit {good[:12]}" in run["output"]["summary"]
    [annotation] = fake_github.annotations("acme", "app", run["id"])
    assert (annotation["path"], annotation["start_line"], annotation["start_column"]) == (
        POLICY,
        7,
        3,
    )
    rejected = store.audit.records(repo_full_name="acme/app")[-1]
    assert (rejected.action, rejected.config_sha) == ("config.rejected", broken)
    assert rejected.detail["sha"] == broken and rejected.detail["serving_sha"] == good
    [problem] = rejected.detail["problems"]
    assert problem.startswith(".bosun/policy.yaml:7:3: triggers.min_permission: ")

    await dispatch(issue_label_event("labeled", label="agent:fix-bug", delivery_id="label-1"))
    [task] = store.tasks.all("acme/app")
    assert (task.task_name, task.config_sha) == ("fix-bug", good)

    restarted = dispatcher(store, github_via_prism, clock)
    fake_github.add_issue("acme", "app", number=13)
    await restarted(
        issue_label_event("labeled", label="agent:fix-bug", issue_number=13, delivery_id="l-2")
    )
    assert [t.config_sha for t in store.tasks.all("acme/app")] == [good, good]
    assert prism_violations() == []


@pytest.mark.parametrize("kind", list(BAD_YAML))
async def test_every_kind_of_bad_yaml_is_refused_precisely_and_bosun_keeps_serving(
    kind: str,
    dispatch: Dispatch,
    store: Store,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """Syntax errors, wrong types, unknown and duplicate keys, alias bombs, oversized and
    non-UTF-8 files each get one exact `file:line:col` error, and labels still queue."""
    content, expected = BAD_YAML[kind]
    good = fake_github.branch_sha("acme", "app", "main")
    await dispatch(issue_label_event("labeled", label="agent:fix-bug", delivery_id="before"))
    broken = await push_file(dispatch, fake_github, content, delivery_id="push-bad")

    rejected = store.audit.records(repo_full_name="acme/app")[-1]
    assert (rejected.action, rejected.config_sha) == ("config.rejected", broken)
    assert rejected.detail["problems"] == [expected]
    [run] = fake_github.check_runs("acme", "app", head_sha=broken)
    assert run["conclusion"] == "failure"
    assert run["output"]["annotations_count"] == 1

    fake_github.add_issue("acme", "app", number=13)
    await dispatch(
        issue_label_event("labeled", label="agent:fix-bug", issue_number=13, delivery_id="after")
    )
    assert [task.config_sha for task in store.tasks.all("acme/app")] == [good, good]
    assert prism_violations() == []


async def test_pushes_elsewhere_or_without_bosun_changes_do_nothing(
    dispatch: Dispatch, store: Store, fake_github: FakeGitHub, repo: Repo
) -> None:
    """Only the default branch's `.bosun/` is config: other branches and files are ignored."""
    fake_github.add_branch("acme", "app", "feature")
    sha = fake_github.set_file("acme", "app", POLICY, b"version: [", branch="feature")
    await dispatch(
        push_event(sha, before=sha, paths=[POLICY], ref="refs/heads/feature", delivery_id="p1")
    )
    readme = fake_github.set_file("acme", "app", "README.md", b"# app\n")
    await dispatch(push_event(readme, before=sha, paths=["README.md"], delivery_id="p2"))
    assert store.audit.records(repo_full_name="acme/app") == []
    assert fake_github.check_runs("acme", "app") == []


async def test_a_broken_org_policy_is_refused_and_its_ceilings_stay(
    dispatch: Dispatch,
    store: Store,
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """A push that breaks the org's `.github` policy is refused there, and repositories keep
    the org's last good ceilings instead of losing them, after a restart too."""
    capped = GOOD.replace(b"per_task_usd: 3.0", b"per_task_usd: 2.5")
    fake_github.add_repo("acme", ".github", installation_id=7, files={POLICY: capped})
    await dispatch(issue_label_event("labeled", label="agent:fix-bug", delivery_id="label"))
    before = fake_github.branch_sha("acme", ".github", "main")
    broken = fake_github.set_file("acme", ".github", POLICY, b"version: 1\nversion: 1\n")
    await dispatch(push_event(broken, before=before, paths=[POLICY], repo=".github"))

    [record] = store.audit.records(repo_full_name="acme/.github")
    assert (record.action, record.detail["serving_sha"]) == ("config.rejected", before)
    assert record.detail["problems"] == [
        ".bosun/policy.yaml:2:1: duplicate key 'version' (first at 1:1)"
    ]
    [run] = fake_github.check_runs("acme", ".github", head_sha=broken)
    assert run["conclusion"] == "failure"

    restarted = ConfigProvider(github_via_prism, good=store.configs)
    config = await restarted.for_repo(repo, default_branch="main")
    assert config.policy.budgets.per_task_usd == 2.5
    assert prism_violations() == []
