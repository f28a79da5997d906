"""A task's own clone, branch and commits, made on the host; tokens never enter the worktree."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from git import GitCommandError, Repo

from sandbox.backends.base import SandboxError

# Every host git command: no hooks, no fsmonitor daemon, no signing prompt.
_SAFE_CONFIG = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("commit.gpgSign", "false"),
)


class WorkspaceError(SandboxError):
    """A git operation on a task's workspace failed; the message never holds the token."""


def git_env(token: str | None = None) -> dict[str, str]:
    """Environment for host git: the safe settings, and the token only as an HTTP header.

    `GIT_CONFIG_*` settings outrank every config file, the clone's own included, and live
    only in the environment of the git process that needs them.
    """
    pairs = list(_SAFE_CONFIG)
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        pairs.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


class Workspace:
    """One task's clone, checked out on its branch; `base_sha` is where the branch left base."""

    def __init__(self, *, repo: Repo, path: Path, branch: str, base_sha: str) -> None:
        self._repo = repo
        self.path = path
        self.branch = branch
        self.base_sha = base_sha

    def changed_paths(self) -> list[str]:
        """Paths that differ from base in the working tree, untracked ones included."""
        tracked = self._git("diff", "--name-only", "--no-renames", "-z", self.base_sha, "--")
        untracked = self._git("ls-files", "--others", "--exclude-standard", "-z")
        return sorted({path for path in f"{tracked}\0{untracked}".split("\0") if path})

    def fingerprint(self) -> str:
        """An id of the working tree's whole content (untracked files included): equal ids,
        equal trees. It stages everything, as `commit` would."""
        self._git("add", "--all")
        return self._git("write-tree")

    def revert(
        self, *, from_sha: str, to_sha: str, message: str, author_name: str, author_email: str
    ) -> str | None:
        """Commit the undoing of `from_sha..to_sha` on top of the branch; None if nothing
        was left to undo. A conflict raises `WorkspaceError`: people must sort it out."""
        self._git("revert", "--no-commit", "--no-edit", f"{from_sha}..{to_sha}")
        return self.commit(message=message, author_name=author_name, author_email=author_email)

    def commit(self, *, message: str, author_name: str, author_email: str) -> str | None:
        """Stage everything and commit as the given identity; None when nothing changed."""
        self._git("add", "--all")
        if not self._git("diff", "--cached", "--name-only"):
            return None
        identity = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": author_name,
            "GIT_COMMITTER_EMAIL": author_email,
        }
        self._git("commit", "--no-verify", "--quiet", "-m", message, env=identity)
        return self._git("rev-parse", "HEAD")

    def push(self, *, token: str | None, force: bool = False) -> None:
        """Push HEAD to the task's branch; `force` replaces it only if it is as last fetched."""
        lease = ["--force-with-lease"] if force else []
        refspec = f"HEAD:refs/heads/{self.branch}"
        self._git("push", "--no-verify", *lease, "origin", refspec, env=git_env(token), token=token)

    def cleanup(self) -> None:
        """Close git's helper processes and remove the clone."""
        self._repo.close()
        remove_tree(self.path)

    def _git(
        self, *args: str, env: Mapping[str, str] | None = None, token: str | None = None
    ) -> str:
        return run_git(self._repo, *args, env=env, token=token)


def prepare(
    *,
    clone_url: str,
    token: str | None,
    base_branch: str,
    branch: str,
    root: Path,
    cache_dir: Path | None = None,
) -> Workspace:
    """Clone the remote into a fresh directory under root and check out `branch`.

    The branch continues the remote's when it already exists (a re-run), else starts at
    `base_branch`. The token is used for this clone only and written nowhere.
    """
    _refuse_unsafe(clone_url, base_branch, branch)
    if not root.exists():
        # Searchable, not listable: bubblewrap's unprivileged user must reach the clones below.
        root.mkdir(parents=True)
        root.chmod(0o711)
    path = Path(tempfile.mkdtemp(prefix="task-", dir=root))
    try:
        repo = _clone(clone_url, path, token=token, base_branch=base_branch, cache_dir=cache_dir)
        try:
            return _on_branch(repo, path, base_branch=base_branch, branch=branch)
        except BaseException:
            repo.close()
            raise
    except BaseException:
        remove_tree(path)
        raise


def _refuse_unsafe(clone_url: str, *branches: str) -> None:
    parts = urlsplit(clone_url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("clone_url must not carry credentials: pass the token separately")
    if any(not name or name.startswith("-") for name in branches):
        raise ValueError(f"unusable branch name among {branches!r}")


def _clone(
    clone_url: str, path: Path, *, token: str | None, base_branch: str, cache_dir: Path | None
) -> Repo:
    mirror = None if cache_dir is None else _refreshed_mirror(clone_url, cache_dir, token=token)
    try:
        # With a cache, borrow its objects while cloning, then copy them (`--dissociate`):
        # the clone never depends on the cache, nor writes into it. None omits an option.
        repo = Repo.clone_from(
            clone_url,
            path,
            env=git_env(token),
            branch=base_branch,
            no_tags=True,
            reference=None if mirror is None else str(mirror),
            dissociate=mirror is not None,
        )
    except GitCommandError as exc:
        raise WorkspaceError(_scrubbed(f"cloning {clone_url} failed: {exc}", token)) from exc
    repo.git.update_environment(**git_env())
    return repo


def _on_branch(repo: Repo, path: Path, *, base_branch: str, branch: str) -> Workspace:
    remote_branch = f"refs/remotes/origin/{branch}"
    if _resolves(repo, remote_branch):
        run_git(repo, "checkout", "--quiet", "-B", branch, remote_branch)
    else:
        run_git(repo, "checkout", "--quiet", "--no-track", "-B", branch)
    base_sha = run_git(repo, "merge-base", "HEAD", f"refs/remotes/origin/{base_branch}")
    return Workspace(repo=repo, path=path, branch=branch, base_sha=base_sha)


def _resolves(repo: Repo, ref: str) -> bool:
    try:
        run_git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except WorkspaceError:
        return False
    return True


def _refreshed_mirror(clone_url: str, cache_dir: Path, *, token: str | None) -> Path:
    """A bare copy of the remote's branches, fetched fresh under a lock per remote."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(clone_url.encode()).hexdigest()[:24]
    mirror = cache_dir / f"{key}.git"
    with _locked(cache_dir / f"{key}.lock"):
        try:
            _fetch_into(mirror, clone_url, token=token)
        except GitCommandError as exc:
            raise WorkspaceError(_scrubbed(f"refreshing the cache failed: {exc}", token)) from exc
    return mirror


def _fetch_into(mirror: Path, clone_url: str, *, token: str | None) -> None:
    env = git_env(token)
    if not (mirror / "HEAD").exists():
        remove_tree(mirror)
        Repo.clone_from(clone_url, mirror, env=env, bare=True, no_tags=True).close()
        return
    repo = Repo(mirror)
    try:
        repo.git.fetch("--prune", "--no-tags", "origin", "+refs/heads/*:refs/heads/*", env=env)
    finally:
        repo.close()


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_git(
    repo: Repo, *args: str, env: Mapping[str, str] | None = None, token: str | None = None
) -> str:
    """One host git command in the clone; failures become `WorkspaceError` without the token."""
    try:
        return repo.git.execute(["git", *args], env=env)
    except GitCommandError as exc:
        raise WorkspaceError(_scrubbed(f"git {args[0]} failed: {exc}", token)) from exc


def _scrubbed(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def remove_tree(path: Path) -> None:
    """Remove a directory tree, first giving its owner back access to directories a run locked."""
    if not path.exists():
        return
    os.chmod(path, stat.S_IRWXU)
    for _, dirnames, _, dirfd in os.fwalk(path):
        for name in dirnames:
            mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(name, stat.S_IMODE(mode) | stat.S_IRWXU, dir_fd=dirfd)
    shutil.rmtree(path)
