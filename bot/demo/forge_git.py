"""Git plumbing over the bare repositories behind the local stand-in forge of `bosun demo`."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import BosunError

# The forge's own git commands: no hooks, no user or system configuration, literal paths.
_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.quotePath=false")
_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_LITERAL_PATHSPECS": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_REF_FORMAT = "%(refname)%00%(objectname)%00%(objecttype)"
_KINDS = {"040000": "dir", "120000": "symlink", "160000": "submodule"}


class ForgeGitError(BosunError):
    """A git command behind the stand-in forge failed."""


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


@dataclass(frozen=True)
class TreeEntry:
    """One path in a commit's tree; `kind` is file, dir, symlink or submodule."""

    path: str
    kind: str
    sha: str
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DiffStats:
    commits: int
    additions: int
    deletions: int
    changed_files: int


@functools.cache
def _git() -> str:
    found = shutil.which("git")
    if found is None:
        raise ForgeGitError("the stand-in forge needs git on PATH")
    return found


def _usable_ref(ref: str) -> bool:
    """A ref or object name git may take as an argument and never as an option."""
    return bool(ref) and not ref.startswith("-") and not any(c in ref for c in "\0\n :^~?*[\\")


class BareRepo:
    """A bare git repository: the state of one forge repository's branches and files."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def init(cls, path: Path, *, default_branch: str) -> BareRepo:
        path.mkdir(parents=True)
        repo = cls(path)
        repo._run("init", "--quiet", "--bare", f"--initial-branch={default_branch}")
        return repo

    # Writes

    def commit(
        self,
        *,
        branch: str,
        files: Mapping[str, bytes | None],
        message: str,
        author: Identity,
        start: str | None = None,
    ) -> str:
        """Commit `files` (None removes a path) on `branch`; a new branch starts at `start`."""
        old = self.branch_sha(branch)
        parent = old or (self.resolve(start) if start else None)
        with tempfile.TemporaryDirectory(prefix="forge-index-") as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if parent is not None:
                self._run("read-tree", parent, env=index)
            lines = []
            for path, content in files.items():
                if content is None:
                    lines.append(f"0 {'0' * 40}\t{path}\0")
                else:
                    sha = self._text("hash-object", "-w", "--stdin", stdin=content)
                    lines.append(f"100644 {sha}\t{path}\0")
            self._run(
                "update-index", "-z", "--index-info", stdin="".join(lines).encode(), env=index
            )
            tree = self._text("write-tree", env=index)
        parents = ["-p", parent] if parent else []
        names = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
        }
        sha = self._text("commit-tree", tree, *parents, "-m", message, env=names)
        self._run("update-ref", f"refs/heads/{branch}", sha, old or "0" * 40)
        return sha

    def delete_ref(self, name: str) -> bool:
        """Remove `refs/<name>`; False when there is no such ref."""
        if self.ref(name) is None:
            return False
        self._run("update-ref", "-d", f"refs/{name}")
        return True

    # Reads

    def ref(self, name: str) -> tuple[str, str] | None:
        """(sha, object type) of exactly `refs/<name>`, or None."""
        full = f"refs/{name}"
        if not _usable_ref(name):
            return None
        listing = self._text("for-each-ref", f"--format={_REF_FORMAT}", full)
        for line in listing.splitlines():
            refname, sha, kind = line.split("\0")
            if refname == full:
                return sha, kind
        return None

    def branch_sha(self, branch: str) -> str | None:
        found = self.ref(f"heads/{branch}")
        return found[0] if found else None

    def branches(self) -> dict[str, str]:
        listing = self._text("for-each-ref", f"--format={_REF_FORMAT}", "refs/heads")
        found = (line.split("\0") for line in listing.splitlines())
        return {refname.removeprefix("refs/heads/"): sha for refname, sha, _ in found}

    def resolve(self, ref: str) -> str | None:
        """The commit a branch, tag or commit sha names; None when it names none."""
        if not _usable_ref(ref):
            return None
        names = [f"refs/heads/{ref}", f"refs/tags/{ref}", ref]
        if _FULL_SHA.fullmatch(ref):
            names.reverse()  # a full sha is almost surely one; ask git that first
        for candidate in names:
            done = self._run(
                "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False
            )
            if done.returncode == 0:
                return done.stdout.decode().strip()
        return None

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The entry at `path` in `commit`; the root is a dir with an empty path."""
        if not path:
            tree = self._text("rev-parse", f"{commit}^{{tree}}")
            return TreeEntry(path="", kind="dir", sha=tree, size=0)
        entries = self._entries(commit, path)
        return entries[0] if entries and entries[0].path == path else None

    def children(self, commit: str, path: str) -> list[TreeEntry]:
        """The entries directly inside the directory at `path` ('' for the root)."""
        return self._entries(commit, f"{path}/" if path else "")

    def blob(self, sha: str) -> bytes:
        return self._run("cat-file", "blob", sha).stdout

    def merge_base(self, base: str, head: str) -> str | None:
        done = self._run("merge-base", base, head, check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def diff(self, base: str, head: str) -> str:
        """The unified diff of what `head` changes since it left `base` (GitHub's base...head)."""
        since = self.merge_base(base, head) or base
        done = self._run("diff", "--no-color", "--no-ext-diff", "--no-renames", since, head)
        return done.stdout.decode(errors="replace")

    def stats(self, base: str, head: str) -> DiffStats:
        since = self.merge_base(base, head) or base
        commits = int(self._text("rev-list", "--count", f"{base}..{head}"))
        numstat = self._text("diff", "--numstat", "--no-renames", since, head)
        additions = deletions = files = 0
        for line in numstat.splitlines():
            added, deleted, _ = line.split("\t", 2)
            additions += int(added) if added.isdigit() else 0
            deletions += int(deleted) if deleted.isdigit() else 0
            files += 1
        return DiffStats(commits, additions, deletions, files)

    def mergeable(self, base: str, head: str) -> bool | None:
        """Whether `head` merges into `base` cleanly; None when git cannot tell (as GitHub's null).

        `merge-tree --write-tree` merges in memory and writes only objects, never refs.
        """
        done = self._run("merge-tree", "--write-tree", base, head, check=False)
        return {0: True, 1: False}.get(done.returncode)

    def message(self, sha: str) -> str:
        return self._text("log", "-1", "--format=%B", sha)

    # Plumbing

    def _entries(self, commit: str, pathspec: str) -> list[TreeEntry]:
        args = ["ls-tree", "-z", "-l", commit]
        listing = self._run(*args, *(["--", pathspec] if pathspec else [])).stdout.decode()
        entries = []
        for record in filter(None, listing.split("\0")):
            meta, path = record.split("\t", 1)
            mode, _, sha, size = meta.split()
            kind = _KINDS.get(mode, "file")
            entries.append(TreeEntry(path, kind, sha, int(size) if size.isdigit() else 0))
        return entries

    def _text(
        self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        return self._run(*args, stdin=stdin, env=env).stdout.decode().strip()

    def _run(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [_git(), "-C", str(self.path), *_CONFIG, *args]
        done = subprocess.run(  # noqa: S603 - a fixed git binary, arguments checked above
            argv,
            input=stdin,
            capture_output=True,
            env={**os.environ, **_ENV, **(env or {})},
            check=False,
        )
        if check and done.returncode != 0:
            problem = done.stderr.decode(errors="replace").strip()
            raise ForgeGitError(f"git {args[0]} in {self.path.name} failed: {problem}")
        return done
