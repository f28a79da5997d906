"""The fake GitHub's git-backed repositories: one real bare repository for git and the API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.github.client import GitHubClient
from bot.github.types import CheckConclusion, CheckStatus, Repo
from sandbox.workspace import prepare
from tests.fakegithub import FakeGitHub

FILES = {"README.md": b"# widgets\n", "src/app.py": b"print('hello')\n"}
GIT_ENV = os.environ | {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_and_push(clone: Path, branch: str, path: str, content: bytes) -> str:
    """Commit one file on `branch` of the clone and push it; returns the commit's sha."""
    git("checkout", "--quiet", "-B", branch, cwd=clone)
    (clone / path).parent.mkdir(parents=True, exist_ok=True)
    (clone / path).write_bytes(content)
    git("add", "--all", cwd=clone)
    git("commit", "--quiet", "-m", f"Change {path}", cwd=clone)
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    return fake_github.add_repo("acme", "widgets", installation_id=7, files=FILES, git=True)


@pytest.fixture
def clone(fake_github: FakeGitHub, repo: Repo, tmp_path: Path) -> Path:
    url = fake_github.clone_url("acme", "widgets")
    git("clone", "--quiet", url, str(tmp_path / "clone"), cwd=tmp_path)
    return tmp_path / "clone"


async def test_a_clone_holds_the_seeded_files_at_the_sha_the_api_names(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clone: Path
) -> None:
    """The repository's clone_url is a file:// URL git clones; both agree on every byte."""
    assert (await github_client.repos.clone_url(repo=repo)).startswith("file://")
    assert {path: (clone / path).read_bytes() for path in FILES} == FILES
    head = git("rev-parse", "HEAD", cwd=clone)
    assert await github_client.repos.get_branch_sha(repo=repo, branch="main") == head
    assert await github_client.repos.get_file(repo=repo, path="src/app.py") == FILES["src/app.py"]
    assert fake_github.branch_files("acme", "widgets", "main") == FILES


async def test_a_pushed_branch_is_visible_to_the_api_at_once(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clone: Path
) -> None:
    """What git pushes is what GitHub answers about: the branch, its files, its PR, checks."""
    sha = commit_and_push(clone, "bosun/fix/1", "src/app.py", b"print('fixed')\n")
    assert fake_github.branches("acme", "widgets") == {
        "main": fake_github.branch_sha("acme", "widgets", "main"),
        "bosun/fix/1": sha,
    }
    assert await github_client.repos.get_branch_sha(repo=repo, branch="bosun/fix/1") == sha
    fixed = await github_client.repos.get_file(repo=repo, path="src/app.py", ref="bosun/fix/1")
    assert fixed == b"print('fixed')\n"

    pull = await github_client.pulls.create_pull(
        repo=repo, title="Fix", head="bosun/fix/1", base="main", body=""
    )
    assert pull.head_sha == sha
    [stored] = fake_github.pulls("acme", "widgets")
    assert (
        stored["commits"],
        stored["changed_files"],
        stored["additions"],
        stored["deletions"],
    ) == (
        1,
        1,
        1,
        1,
    )
    check = await github_client.checks.create_check_run(
        repo=repo,
        name="bosun/task",
        head_sha=sha,
        status=CheckStatus.COMPLETED,
        conclusion=CheckConclusion.SUCCESS,
        title="Done",
        summary="Fixed.",
    )
    [stored_check] = fake_github.check_runs("acme", "widgets", head_sha=sha)
    assert stored_check["id"] == check.id
    assert stored_check["pull_requests"][0]["number"] == pull.number

    again = commit_and_push(clone, "bosun/fix/1", "NOTES.md", b"more\n")
    assert (await github_client.pulls.get_pull(repo=repo, number=pull.number)).head_sha == again
    assert (
        await github_client.checks.find_check_run(repo=repo, head_sha=again, name="bosun/task")
        is None
    )


async def test_set_file_on_a_git_backed_repository_is_a_real_commit(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clone: Path
) -> None:
    """Seeding a change commits it in the bare repository, on top of the branch, for git too."""
    before = fake_github.branch_sha("acme", "widgets", "main")
    sha = fake_github.set_file("acme", "widgets", 'docs/odd name "1".md', b"odd\n")
    fake_github.set_file("acme", "widgets", "README.md", None)
    git("pull", "--quiet", "--ff-only", cwd=clone)
    assert git("rev-parse", "HEAD~1", cwd=clone) == sha
    assert git("rev-parse", "HEAD~2", cwd=clone) == before
    assert (clone / 'docs/odd name "1".md').read_bytes() == b"odd\n"
    assert not (clone / "README.md").exists()
    assert await github_client.repos.list_directory(repo=repo, path="docs") == [
        'docs/odd name "1".md'
    ]
    assert await github_client.repos.get_file(repo=repo, path="README.md") is None


async def test_a_deleted_branch_is_gone_from_the_bare_repository(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, clone: Path
) -> None:
    """Rolling back a branch through the API removes it for git as well."""
    commit_and_push(clone, "bosun/fix/1", "fix.py", b"x = 1\n")
    await github_client.repos.delete_branch(repo=repo, branch="bosun/fix/1")
    assert git("ls-remote", "--heads", "origin", cwd=clone).endswith("refs/heads/main")
    assert list(fake_github.branches("acme", "widgets")) == ["main"]


async def test_bosuns_workspace_clones_and_pushes_to_it(
    github_client: GitHubClient, fake_github: FakeGitHub, repo: Repo, tmp_path: Path
) -> None:
    """The task's own clone, made from the URL and token GitHub gives, pushes a branch that
    a pull request can then be opened from."""
    workspace = prepare(
        clone_url=await github_client.repos.clone_url(repo=repo),
        token=await github_client.installation_token(installation_id=repo.installation_id),
        base_branch="main",
        branch="bosun/fix/1",
        root=tmp_path / "workspaces",
    )
    try:
        (workspace.path / "src/app.py").write_bytes(b"print('agent')\n")
        sha = workspace.commit(
            message="Fix #1", author_name="bosun[bot]", author_email="bosun@example.com"
        )
        workspace.push(token=None)
    finally:
        workspace.cleanup()
    pull = await github_client.pulls.create_pull(
        repo=repo, title="Fix #1", head="bosun/fix/1", base="main", body="Closes #1"
    )
    assert pull.head_sha == sha
    files = fake_github.branch_files("acme", "widgets", "bosun/fix/1")
    assert files == FILES | {"src/app.py": b"print('agent')\n"}


def test_an_in_memory_repository_has_nothing_to_clone(fake_github: FakeGitHub) -> None:
    """Only a repository added with git=True can be cloned; asking otherwise says so."""
    fake_github.add_repo("acme", "memory")
    with pytest.raises(ValueError, match="git=True"):
        fake_github.clone_url("acme", "memory")
