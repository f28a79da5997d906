"""Every GitHub call Bosun makes, checked by Prism against GitHub's own OpenAPI description."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import aiohttp
import gidgethub
import gidgethub.aiohttp
import pytest

from bot.core.errors import GitHubError
from bot.github.client import GitHubClient
from bot.github.types import Annotation, CheckConclusion, CheckStatus, MergeMethod, PullState, Repo
from tests.contract import prism
from tests.contract.prism import HTTP_METHODS, OPERATIONS, PrismProxy, PrismUnavailable
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub

Violations = Callable[[], list[str]]
SQUASH = MergeMethod.SQUASH


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    return fake_github.add_repo(
        "acme",
        "widgets",
        installation_id=7,
        files={
            ".bosun/policy.yaml": b"version: 1\n",
            ".bosun/tasks/fix.yaml": b"agent: builtin\n",
            ".bosun/tasks/docs/deep.yaml": b"agent: builtin\n",
        },
    )


async def test_reads_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """Repository, permission, branch, file and directory reads match GitHub's description."""
    fake_github.set_permission("acme", "widgets", "dev", "maintain")
    fake_github.add_branch("acme", "widgets", "bosun/fix/12")
    github = github_via_prism

    assert (await github.repos.get_repository(repo=repo)).default_branch == "main"
    assert await github.repos.permission_of(repo=repo, username="dev") == "maintain"
    assert len(await github.repos.get_branch_sha(repo=repo, branch="bosun/fix/12")) == 40
    policy = await github.repos.get_file(repo=repo, path=".bosun/policy.yaml", ref="bosun/fix/12")
    assert policy == b"version: 1\n"
    tasks = await github.repos.list_directory(repo=repo, path=".bosun/tasks", ref="main")
    assert tasks == [".bosun/tasks/fix.yaml"]
    assert prism_violations() == []


async def test_absent_things_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """GitHub's 404s for a missing file, directory, collaborator or label match its description."""
    github = github_via_prism
    issue = fake_github.add_issue("acme", "widgets")
    assert await github.repos.get_file(repo=repo, path=".bosun/none.yaml", ref="main") is None
    assert await github.repos.list_directory(repo=repo, path=".bosun/none", ref="main") == []
    assert await github.repos.permission_of(repo=repo, username="stranger") == "none"
    await github.issues.remove_label(repo=repo, issue_number=issue, name="never-there")
    with pytest.raises(GitHubError):
        await github.repos.get_branch_sha(repo=repo, branch="no-such-branch")
    assert prism_violations() == []


async def test_conditional_reads_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """Revalidated reads (If-None-Match, 304) pass through Prism and serve cached data."""
    for _ in range(2):
        assert await github_via_prism.repos.get_file(repo=repo, path=".bosun/policy.yaml")
        await github_via_prism.repos.get_branch_sha(repo=repo, branch="main")
        await github_via_prism.repos.get_repository(repo=repo)
    assert [r.status for r in fake_github.requests if r.method == "GET"][-3:] == [304] * 3
    assert prism_violations() == []


async def test_writes_and_paginated_listing_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """Comments, labels and reactions, and a listing over several pages, match the description."""
    github = github_via_prism
    issue = fake_github.add_issue("acme", "widgets", labels=["bug"])
    for i in range(105):
        fake_github.add_comment("acme", "widgets", issue, f"comment {i}")
    command = fake_github.add_comment("acme", "widgets", issue, "/bosun run fix", user="dev")

    status = await github.issues.create_comment(
        repo=repo, issue_number=issue, body="queued", marker="<!-- bosun:test 1 -->"
    )
    await github.issues.update_comment(repo=repo, comment_id=status, body="running")
    await github.issues.create_reaction_for_comment(repo=repo, comment_id=command, content="eyes")
    await github.issues.create_reaction_for_comment(repo=repo, comment_id=command, content="eyes")
    await github.issues.add_labels(repo=repo, issue_number=issue, labels=["agent:fix"])
    await github.issues.remove_label(repo=repo, issue_number=issue, name="bug")
    comments = await github.issues.list_comments(repo=repo, issue_number=issue)

    assert len(comments) == 107
    assert comments[-1].body == "running"
    assert fake_github.labels("acme", "widgets", issue) == ["agent:fix"]
    assert prism_violations() == []


async def test_issue_and_pull_request_calls_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """Issues, pull requests (opened, found, updated, merged, from a fork) and branch
    deletion, on a git-backed repository, match the description both ways."""
    github = github_via_prism
    repo = fake_github.add_repo(
        "acme", "gears", installation_id=7, files={"README.md": b"# gears\n"}, git=True
    )
    issue = fake_github.add_issue("acme", "gears", labels=["agent:fix"])
    fake_github.add_branch("acme", "gears", "bosun/fix/1")
    head = fake_github.set_file("acme", "gears", "fix.py", b"fixed\n", branch="bosun/fix/1")
    fake_github.add_pull("acme", "gears", head="bosun/fix/1", head_repo_full_name="someone/gears")
    merged = fake_github.add_pull("acme", "gears", head="bosun/docs/1", merged=True)

    assert not (await github.issues.get_issue(repo=repo, number=issue)).is_pull_request
    assert await github.pulls.find_open_pull(repo=repo, head_branch="bosun/fix/1") is None
    opened = await github.pulls.create_pull(
        repo=repo, title="Fix #1", head="bosun/fix/1", base="main", body="Closes #1"
    )
    assert opened.head_sha == head
    found = await github.pulls.find_open_pull(repo=repo, head_branch="bosun/fix/1")
    assert found is not None and found.number == opened.number
    assert (await github.issues.get_issue(repo=repo, number=opened.number)).is_pull_request
    await github.pulls.update_pull(repo=repo, number=opened.number, body="Closes #1 (again)")
    closed = await github.pulls.update_pull(repo=repo, number=opened.number, state=PullState.CLOSED)
    assert (await github.pulls.get_pull(repo=repo, number=closed.number)).state == "closed"
    await github.repos.delete_branch(repo=repo, branch="bosun/fix/1")
    await github.repos.delete_branch(repo=repo, branch="bosun/fix/1")
    assert (await github.pulls.get_pull(repo=repo, number=merged)).merged is True
    assert prism_violations() == []


async def test_check_run_calls_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    clock: FakeClock,
    prism_violations: Violations,
) -> None:
    """A check run created, found by name and commit, and completed matches the description."""
    github = github_via_prism
    fake_github.add_branch("acme", "widgets", "bosun/fix/1")
    sha = fake_github.set_file("acme", "widgets", "fix.py", b"fixed\n", branch="bosun/fix/1")
    fake_github.add_pull("acme", "widgets", head="bosun/fix/1")
    assert await github.checks.find_check_run(repo=repo, head_sha=sha, name="bosun/task") is None
    created = await github.checks.create_check_run(
        repo=repo,
        name="bosun/task",
        head_sha=sha,
        status=CheckStatus.IN_PROGRESS,
        title="Running",
        summary="The agent is at work.",
        started_at=clock.now(),
        external_id="task-42",
        details_url="https://bosun.example.com/tasks/42",
    )
    [stored] = fake_github.check_runs("acme", "widgets", head_sha=sha)
    assert stored["pull_requests"][0]["head"]["sha"] == sha
    found = await github.checks.find_check_run(repo=repo, head_sha=sha, name="bosun/task")
    assert found is not None and found.id == created.id
    await github.checks.update_check_run(
        repo=repo,
        check_run_id=created.id,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.FAILURE,
        title="Failed",
        summary="x" * 70_000,
        text="The tests failed.",
        completed_at=clock.now(),
    )
    await github.checks.update_check_run(
        repo=repo, check_run_id=created.id, conclusion=CheckConclusion.CANCELLED
    )
    [run] = fake_github.check_runs("acme", "widgets", head_sha=sha)
    assert (run["status"], run["conclusion"]) == ("completed", "cancelled")
    assert prism_violations() == []


async def test_merge_and_what_it_waits_for_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    prism_violations: Violations,
) -> None:
    """Every App's check runs over several pages, the combined status with and without
    statuses, and a merge refused (head moved, already merged) and done match the description."""
    github = github_via_prism
    repo = fake_github.add_repo(
        "acme", "gears", installation_id=7, files={"README.md": b"# gears\n"}, git=True
    )
    fake_github.add_branch("acme", "gears", "bosun/fix/1")
    sha = fake_github.set_file("acme", "gears", "fix.py", b"fixed\n", branch="bosun/fix/1")
    number = fake_github.add_pull("acme", "gears", head="bosun/fix/1", user="bosun[bot]")
    for n in range(101):
        fake_github.add_check_run("acme", "gears", sha, check_name=f"ci/{n}", conclusion="success")
    fake_github.add_check_run("acme", "gears", sha, check_name="ci/0", conclusion="failure")

    runs = await github.checks.list_check_runs(repo=repo, ref=sha)
    assert len(runs) == 101
    identity = await github.app_identity()
    assert identity is not None and identity.id not in {run.app_id for run in runs}
    assert next(r for r in runs if r.name == "ci/0").conclusion == "failure"
    empty = await github.repos.combined_status(repo=repo, ref=sha)
    assert (empty.state, empty.total_count) == ("pending", 0)
    fake_github.add_status("acme", "gears", sha, state="success")
    status = await github.repos.combined_status(repo=repo, ref=sha)
    assert (status.state, status.total_count) == ("success", 1)

    with pytest.raises(GitHubError) as moved:
        await github.pulls.merge_pull(repo=repo, number=number, sha="0" * 40, merge_method=SQUASH)
    assert moved.value.status_code == 409
    merged = await github.pulls.merge_pull(repo=repo, number=number, sha=sha, merge_method=SQUASH)
    assert merged.merged is True
    assert fake_github.branch_sha("acme", "gears", "main") == merged.sha
    assert fake_github.branch_files("acme", "gears", "main")["fix.py"] == b"fixed\n"
    with pytest.raises(GitHubError) as again:
        await github.pulls.merge_pull(repo=repo, number=number, sha=sha, merge_method=SQUASH)
    assert again.value.status_code == 405
    assert prism_violations() == []


async def test_pull_request_files_and_annotations_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """A pull request's files over several pages, and a check run with more annotations than
    one request may carry (sent as a create and updates), match the description."""
    github = github_via_prism
    fake_github.add_branch("acme", "widgets", "policy")
    for n in range(105):
        fake_github.set_file("acme", "widgets", f"docs/{n}.md", b"text\n", branch="policy")
    sha = fake_github.set_file(
        "acme", "widgets", ".bosun/policy.yaml", b"version: 2\n", branch="policy"
    )
    number = fake_github.add_pull("acme", "widgets", head="policy")
    files = await github.pulls.list_pull_files(repo=repo, number=number)
    assert len(files) == 106 and ".bosun/policy.yaml" in files
    annotations = [
        Annotation(
            path=".bosun/policy.yaml",
            start_line=1 + n % 2,
            end_line=1 + n % 2 + n % 3,
            start_column=10,
            end_column=10,
            message=f"version: must be 1 ({n})",
            title="bosun/policy",
        )
        for n in range(60)
    ]
    run = await github.checks.create_check_run(
        repo=repo,
        name="bosun/policy",
        head_sha=sha,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.FAILURE,
        title="1 problem",
        summary="The policy does not validate.",
        annotations=annotations,
    )
    assert run.annotations_count == 60
    assert prism_violations() == []


async def test_status_comment_lookup_and_tokens_conform(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """The App's own identity, a token for git, the clone URL and a paged search for the
    status comment match the description."""
    github = github_via_prism
    marker = "<!-- bosun:status task=7 -->"
    issue = fake_github.add_issue("acme", "widgets")
    fake_github.add_comment("acme", "widgets", issue, f"quoting {marker}", user="mallory")
    for i in range(101):
        fake_github.add_comment("acme", "widgets", issue, f"comment {i}")
    own = await github.issues.create_comment(
        repo=repo, issue_number=issue, body=f"{marker}\nqueued", marker=marker
    )

    found = await github.issues.find_comment(repo=repo, issue_number=issue, marker=marker)
    assert found is not None and found.id == own
    assert await github.installation_token(installation_id=7) in fake_github.tokens
    assert await github.repos.clone_url(repo=repo) == "https://github.com/acme/widgets.git"
    assert prism_violations() == []


async def test_a_malformed_request_is_flagged(
    prism_proxy: PrismProxy,
    fake_github: FakeGitHub,
    github_session: aiohttp.ClientSession,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """The check can fail: a comment body that is not a string is refused before the fake."""
    issue = fake_github.add_issue("acme", "widgets")
    raw = gidgethub.aiohttp.GitHubAPI(github_session, "bosun", base_url=prism_proxy.url)
    with pytest.raises(gidgethub.BadRequest) as caught:
        await raw.post(
            "/repos/{owner}/{repo}/issues/{issue_number}/comments",
            {"owner": "acme", "repo": "widgets", "issue_number": issue},
            data={"body": 42},
        )
    assert caught.value.status_code == 422
    [violation] = prism_violations()
    assert f"post /repos/acme/widgets/issues/{issue}/comments" in violation
    assert not [r for r in fake_github.requests if r.method == "POST"]


async def test_an_answer_off_the_description_is_flagged(
    github_via_prism: GitHubClient,
    fake_github: FakeGitHub,
    repo: Repo,
    prism_violations: Violations,
) -> None:
    """The check covers the fake too: an issue comment without its required fields is caught."""
    issue = fake_github.add_issue("acme", "widgets")
    fake_github.fail_next("POST", r"/comments$", 201, body={"id": 1, "body": "queued"})
    await github_via_prism.issues.create_comment(
        repo=repo, issue_number=issue, body="queued", marker="<!-- bosun:test 1 -->"
    )
    refused, rules = prism_violations()
    assert f"post /repos/acme/widgets/issues/{issue}/comments" in refused
    assert "must have required property 'node_id'" in rules


def test_the_spec_holds_only_the_operations_bosun_sends(prism_proxy: PrismProxy) -> None:
    """Prism knows exactly Bosun's operations, so an unexpected request is refused too."""
    spec = json.loads(prism_proxy.spec_path.read_text())
    operations = {
        op["operationId"]
        for item in spec["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
    }
    assert operations == OPERATIONS
    assert spec["servers"] == [{"url": prism_proxy.url}]
    assert '"Link"' not in json.dumps(spec["paths"])
    assert "https://api.github.com" not in prism_proxy.spec_path.read_text()


def test_a_missing_harness_fails_with_the_command_that_installs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a fresh clone without node_modules the contract tests fail and say what to run."""
    monkeypatch.setattr(prism, "OPENAPI_JSON", tmp_path / "missing.json")
    with pytest.raises(PrismUnavailable, match="npm ci --prefix tests/contract"):
        prism.require_installed()
