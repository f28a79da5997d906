"""Fixtures for the sandbox suites: the sandbox user, backends, short limits, worktrees, remotes."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.backends import BubblewrapBackend, Limits, ProcessBackend
from sandbox.setup import ensure_sandbox_user

SANDBOX_USER = "bosun-sandbox"
# A fixed identity and no user or system config, so the host's git settings cannot leak in.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Seeder",
    "GIT_AUTHOR_EMAIL": "seeder@example.invalid",
    "GIT_COMMITTER_NAME": "Test Seeder",
    "GIT_COMMITTER_EMAIL": "seeder@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(scope="session")
def sandbox_user() -> str:
    """The unprivileged user that bubblewrap drops to when the tests run as root."""
    if os.geteuid() == 0:
        ensure_sandbox_user(SANDBOX_USER)
    return SANDBOX_USER


@pytest.fixture
def bubblewrap(sandbox_user: str) -> BubblewrapBackend:
    return BubblewrapBackend(sandbox_user=sandbox_user)


@pytest.fixture
def process_backend() -> ProcessBackend:
    return ProcessBackend()


@pytest.fixture
def short_limits() -> Limits:
    """Generous enough for sh, coreutils and python3; short enough to keep the suite fast."""
    return Limits(
        cpu_seconds=5, memory_mb=512, wall_seconds=10, max_processes=64, max_output_bytes=65_536
    )


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    """A fresh directory (mode 0711) that the sandbox user may cross but not list.

    pytest's own tmp_path sits below a mode-0700 directory, which no sandbox user can cross.
    """
    parent = Path(tempfile.mkdtemp(prefix="bosun-sandbox-test-"))
    parent.chmod(0o711)
    yield parent
    shutil.rmtree(parent)


@pytest.fixture
def worktree(searchable_dir: Path) -> Path:
    """A worktree with a `.git` holding a secret, where bubblewrap's user can reach it."""
    tree = searchable_dir / "worktree"
    (tree / ".git" / "hooks").mkdir(parents=True)
    (tree / ".git" / "config").write_text("[core]\n\tsecret = from-the-host\n")
    (tree / "README.md").write_text("hello\n")
    return tree


def git(*args: str, cwd: Path) -> str:
    """Run git as a test author would, returning stripped stdout."""
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def git_remote(tmp_path: Path) -> Path:
    """A bare repository with `main` (README.md, src/app.py, .gitignore) standing in for GitHub."""
    bare = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    seed = tmp_path / "seed"
    git("init", "--quiet", "--initial-branch=main", str(seed), cwd=tmp_path)
    (seed / "src").mkdir()
    (seed / "README.md").write_text("# demo\n")
    (seed / "src" / "app.py").write_text("print('hi')\n")
    (seed / ".gitignore").write_text("*.log\n")
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "seed", cwd=seed)
    git("push", "--quiet", str(bare), "main", cwd=seed)
    return bare


def unique_sleep() -> str:
    """A `sleep` duration no other process on the machine is using, to find leftovers by."""
    return f"1000.{secrets.randbelow(10**9):09d}"


def sleepers(duration: str) -> list[int]:
    """Live (not zombie) processes running exactly `sleep <duration>`."""
    wanted = f"sleep\0{duration}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline == wanted:
            found.append(int(entry.name))
    return found


def wait_until_gone(duration: str, *, within: float = 2.0) -> list[int]:
    """The `sleep <duration>` processes still alive after waiting up to `within` seconds."""
    deadline = time.monotonic() + within
    while (left := sleepers(duration)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left
