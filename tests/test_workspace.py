"""Workspaces on real git: a bare repository in tmp_path stands in for the forge."""

from __future__ import annotations

import base64
import http.server
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from sandbox.backends import BubblewrapBackend, Limits
from sandbox.workspace import Workspace, WorkspaceError, prepare
from tests.sandbox_fixtures import git

BRANCH = "bosun/fix-typo/7"
BOT = {"author_name": "bosun[bot]", "author_email": "bosun@users.noreply.example"}
TOKEN = "ghs_CanaryTokenThatMustNeverLandOnDisk0001"


def clone(
    git_remote: Path,
    root: Path,
    *,
    branch: str = BRANCH,
    token: str | None = None,
    cache_dir: Path | None = None,
) -> Workspace:
    return prepare(
        clone_url=git_remote.as_uri(),
        token=token,
        base_branch="main",
        branch=branch,
        root=root,
        cache_dir=cache_dir,
    )


@pytest.fixture
def open_workspace(git_remote: Path, tmp_path: Path) -> Iterator[Workspace]:
    workspace = clone(git_remote, tmp_path / "workspaces", token=TOKEN)
    yield workspace
    workspace.cleanup()


def remote_sha(git_remote: Path, ref: str) -> str:
    return git("rev-parse", ref, cwd=git_remote)


def test_prepare_clones_the_base_onto_a_new_branch(
    open_workspace: Workspace, git_remote: Path, tmp_path: Path
) -> None:
    """A task gets its own clone of the base branch, on its own new branch, below root."""
    workspace = open_workspace
    assert workspace.path.parent == tmp_path / "workspaces"
    assert stat.S_IMODE(workspace.path.parent.stat().st_mode) == 0o711
    assert (workspace.path / ".git").is_dir()
    assert git("branch", "--show-current", cwd=workspace.path) == BRANCH
    assert workspace.base_sha == remote_sha(git_remote, "main")
    assert git("rev-parse", "HEAD", cwd=workspace.path) == workspace.base_sha
    assert (workspace.path / "src" / "app.py").read_text() == "print('hi')\n"
    assert git("remote", "get-url", "origin", cwd=workspace.path) == git_remote.as_uri()


def test_each_task_gets_a_separate_clone(git_remote: Path, tmp_path: Path) -> None:
    """Two tasks never share a directory or a .git."""
    spaces = [clone(git_remote, tmp_path, branch=f"bosun/t/{n}") for n in (1, 2)]
    assert spaces[0].path != spaces[1].path
    assert not (spaces[0].path / ".git" / "commondir").exists()
    for workspace in spaces:
        workspace.cleanup()


def test_changed_paths_cover_edits_deletions_and_new_files(open_workspace: Workspace) -> None:
    """Modified, deleted and untracked files count as changed; ignored files and .git do not."""
    root = open_workspace.path
    (root / "README.md").write_text("# changed\n")
    (root / "src" / "app.py").unlink()
    (root / "src" / "new.py").write_text("x = 1\n")
    (root / ".bosun").mkdir()
    (root / ".bosun" / "policy.yaml").write_text("{}\n")
    (root / "debug.log").write_text("ignored\n")
    assert open_workspace.changed_paths() == [
        ".bosun/policy.yaml",
        "README.md",
        "src/app.py",
        "src/new.py",
    ]


def test_changed_paths_include_committed_work_on_the_branch(open_workspace: Workspace) -> None:
    """What the branch already carries since base counts, so checks see the whole change."""
    (open_workspace.path / "CHANGELOG.md").write_text("fixed\n")
    open_workspace.commit(message="first", **BOT)
    (open_workspace.path / "README.md").write_text("# again\n")
    assert open_workspace.changed_paths() == ["CHANGELOG.md", "README.md"]


def test_commit_uses_the_bot_identity_and_message(open_workspace: Workspace) -> None:
    """Everything in the worktree is committed once, as the bot, with the given message."""
    (open_workspace.path / "fix.txt").write_text("fixed\n")
    sha = open_workspace.commit(message="Fix the typo\n\nCloses #7", **BOT)
    fields = git("log", "-1", "--format=%H|%an|%ae|%cn|%ce|%B", cwd=open_workspace.path).split("|")
    assert fields[:5] == [
        sha,
        "bosun[bot]",
        "bosun@users.noreply.example",
        "bosun[bot]",
        "bosun@users.noreply.example",
    ]
    assert fields[5] == "Fix the typo\n\nCloses #7"
    assert git("status", "--porcelain", cwd=open_workspace.path) == ""


def test_commit_with_nothing_changed_returns_none(open_workspace: Workspace) -> None:
    """No change, no commit."""
    assert open_workspace.commit(message="nothing", **BOT) is None
    assert git("rev-parse", "HEAD", cwd=open_workspace.path) == open_workspace.base_sha


def test_push_lands_the_branch_on_the_remote(open_workspace: Workspace, git_remote: Path) -> None:
    """After push, the remote's branch is the commit made in the workspace."""
    (open_workspace.path / "fix.txt").write_text("fixed\n")
    sha = open_workspace.commit(message="Fix", **BOT)
    open_workspace.push(token=TOKEN)
    assert remote_sha(git_remote, f"refs/heads/{BRANCH}") == sha
    assert remote_sha(git_remote, "refs/heads/main") == open_workspace.base_sha


def test_a_rerun_continues_the_branch_the_remote_already_has(
    open_workspace: Workspace, git_remote: Path, tmp_path: Path
) -> None:
    """A second run of the same task starts from the pushed branch, not from base again."""
    (open_workspace.path / "step1.txt").write_text("one\n")
    first = open_workspace.commit(message="step 1", **BOT)
    open_workspace.push(token=None)
    again = clone(git_remote, tmp_path / "workspaces")
    assert git("rev-parse", "HEAD", cwd=again.path) == first
    assert (again.path / "step1.txt").read_text() == "one\n"
    assert again.base_sha == open_workspace.base_sha
    (again.path / "step2.txt").write_text("two\n")
    second = again.commit(message="step 2", **BOT)
    again.push(token=None)
    assert remote_sha(git_remote, f"refs/heads/{BRANCH}") == second
    again.cleanup()


def test_force_push_replaces_the_branch_it_last_saw(
    open_workspace: Workspace, git_remote: Path
) -> None:
    """A forced push may rewrite the task's branch when nobody else moved it meanwhile."""
    (open_workspace.path / "a.txt").write_text("a\n")
    open_workspace.commit(message="a", **BOT)
    open_workspace.push(token=None)
    git("fetch", "--quiet", "origin", cwd=open_workspace.path)
    git("reset", "--quiet", "--hard", open_workspace.base_sha, cwd=open_workspace.path)
    (open_workspace.path / "b.txt").write_text("b\n")
    rewritten = open_workspace.commit(message="b", **BOT)
    with pytest.raises(WorkspaceError, match="git push failed"):
        open_workspace.push(token=None)
    open_workspace.push(token=None, force=True)
    assert remote_sha(git_remote, f"refs/heads/{BRANCH}") == rewritten


def test_the_token_is_written_nowhere(git_remote: Path, tmp_path: Path) -> None:
    """Neither the clone (its .git included) nor the cache holds the token in any form."""
    cache = tmp_path / "cache"
    workspace = clone(git_remote, tmp_path / "workspaces", token=TOKEN, cache_dir=cache)
    (workspace.path / "fix.txt").write_text("fixed\n")
    workspace.commit(message="Fix", **BOT)
    workspace.push(token=TOKEN)
    header = base64.b64encode(f"x-access-token:{TOKEN}".encode())
    files = [p for top in (workspace.path, cache) for p in top.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        content = path.read_bytes()
        assert TOKEN.encode() not in content, path
        assert header not in content, path
    workspace.cleanup()


def test_hooks_planted_in_the_clone_never_run(open_workspace: Workspace, tmp_path: Path) -> None:
    """Host git runs no hook from the clone: not from .git/hooks, not via core.hooksPath."""
    fired = tmp_path / "fired"
    hooks = open_workspace.path / ".git" / "hooks"
    other = open_workspace.path / "planted-hooks"
    other.mkdir()
    for folder in (hooks, other):
        for name in ("pre-commit", "commit-msg", "post-commit", "pre-push"):
            hook = folder / name
            hook.write_text(f"#!/bin/sh\necho {name} >> {fired}\n")
            hook.chmod(0o755)
    git("config", "core.hooksPath", str(other), cwd=open_workspace.path)
    (open_workspace.path / "fix.txt").write_text("fixed\n")
    assert open_workspace.commit(message="Fix", **BOT) is not None
    open_workspace.push(token=None)
    assert not fired.exists()


def test_a_cache_speeds_clones_without_the_clone_depending_on_it(
    git_remote: Path, tmp_path: Path
) -> None:
    """Clones borrow from a refreshed cache, then stand alone: removing the cache breaks nothing."""
    cache = tmp_path / "cache"
    first = clone(git_remote, tmp_path / "ws", branch="bosun/a/1", cache_dir=cache)
    (first.path / "new.txt").write_text("new\n")
    pushed = first.commit(message="new", **BOT)
    first.push(token=None)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=first.path)
    second = clone(git_remote, tmp_path / "ws", branch="bosun/b/2", cache_dir=cache)
    assert second.base_sha == pushed
    assert not (second.path / ".git" / "objects" / "info" / "alternates").exists()
    shutil.rmtree(cache)
    assert git("fsck", "--no-progress", cwd=second.path) == ""
    first.cleanup()
    second.cleanup()


def test_failures_clean_up_and_name_the_problem(git_remote: Path, tmp_path: Path) -> None:
    """A missing base branch is a WorkspaceError, and no half-made clone is left behind."""
    root = tmp_path / "ws"
    with pytest.raises(WorkspaceError, match="cloning"):
        prepare(
            clone_url=git_remote.as_uri(), token=None, base_branch="nope", branch=BRANCH, root=root
        )
    assert list(root.iterdir()) == []


def test_credentials_in_the_clone_url_are_refused(tmp_path: Path) -> None:
    """Tokens travel separately from URLs, so that no URL written to .git/config carries one."""
    with pytest.raises(ValueError, match="must not carry credentials"):
        prepare(
            clone_url="https://x-access-token:secret@github.com/o/r.git",
            token=None,
            base_branch="main",
            branch=BRANCH,
            root=tmp_path,
        )


def test_option_like_branch_names_are_refused(git_remote: Path, tmp_path: Path) -> None:
    """A branch name can never be read by git as an option."""
    with pytest.raises(ValueError, match="unusable branch name"):
        clone(git_remote, tmp_path, branch="--upload-pack=touch /tmp/x")


def test_a_cache_path_with_spaces_works(git_remote: Path, tmp_path: Path) -> None:
    """Paths are passed to git as whole arguments, never split by a shell."""
    workspace = clone(git_remote, tmp_path / "my workspaces", cache_dir=tmp_path / "my cache")
    assert git("branch", "--show-current", cwd=workspace.path) == BRANCH
    workspace.cleanup()


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


def test_the_token_reaches_the_server_only_as_an_authorization_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP the token goes in a Basic Authorization header, and errors do not repeat it."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    _RecordingHandler.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with pytest.raises(WorkspaceError) as failure:
            prepare(
                clone_url=f"http://127.0.0.1:{server.server_address[1]}/o/r.git",
                token=TOKEN,
                base_branch="main",
                branch=BRANCH,
                root=tmp_path / "ws",
            )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert _RecordingHandler.seen[:1] == [expected]
    assert TOKEN not in str(failure.value)


async def test_a_sandboxed_run_leaves_a_clone_the_host_can_commit_and_push(
    git_remote: Path, searchable_dir: Path, bubblewrap: BubblewrapBackend, short_limits: Limits
) -> None:
    """An agent's edits made inside bubblewrap are committed and pushed by the host's git."""
    workspace = clone(git_remote, searchable_dir / "workspaces")
    script = "echo fixed > fix.txt && rm src/app.py && git --version"
    result = await bubblewrap.run(
        ["sh", "-c", script], cwd=workspace.path, env={}, limits=short_limits
    )
    assert result.exit_code == 0, result.stderr
    assert workspace.changed_paths() == ["fix.txt", "src/app.py"]
    sha = workspace.commit(message="Agent fix", **BOT)
    workspace.push(token=None)
    assert remote_sha(git_remote, f"refs/heads/{BRANCH}") == sha
    workspace.cleanup()
