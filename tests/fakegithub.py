"""A stateful GitHub over real HTTP, answering in the shapes GitHub's REST description requires."""

from __future__ import annotations

import asyncio
import base64
import difflib
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import jwt
from aiohttp import web

from bot.github.types import Repo

BOT_LOGIN = "bosun[bot]"
BOT_USER_ID = 149_000_001
APP_SLUG = "bosun"
TOKEN_LIFETIME = timedelta(hours=1)
RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"
WEB = "https://github.com"
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
MERGE_METHODS = ("merge", "squash", "rebase")
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
OUTPUT_LIMIT = 65535
INLINE_CONTENT_LIMIT = 1_000_000
ANNOTATIONS_PER_REQUEST = 50
ANNOTATION_LEVELS = ("notice", "warning", "failure")
ANNOTATION_FIELDS = ("path", "start_line", "end_line", "annotation_level", "message")
GIT_IDENTITY = "GitHub <noreply@github.com>"
SHA = re.compile(r"[0-9a-f]{40}")
# GitHub's permission field predates maintain and triage and folds them into write and read.
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Answer(Exception):
    """Stop handling a request and answer with this status and GitHub's error body."""

    def __init__(self, status: int, message: str, *, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: Any
    delay: float
    times: int


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


@dataclass
class FakeIssue:
    """An issue, or the issue side of a pull request (GitHub numbers both alike)."""

    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    labels: list[str] = field(default_factory=list)
    state: str = "open"
    closed_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class FakePull:
    """The pull request side: where it comes from and goes to; text and state are the issue's."""

    number: int
    id: int
    head_repo: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    draft: bool = False
    maintainer_can_modify: bool = False
    merged_at: datetime | None = None
    merged_by: str | None = None
    reviews: list[FakeReview] = field(default_factory=list)
    merge_method: str | None = None  # how the merge endpoint was asked to merge it

    @property
    def head_owner(self) -> str:
        return self.head_repo.partition("/")[0]


@dataclass
class FakeReviewComment:
    id: int
    path: str
    line: int
    body: str


@dataclass
class FakeReview:
    id: int
    user: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED
    body: str
    commit_id: str
    submitted_at: datetime
    comments: list[FakeReviewComment] = field(default_factory=list)


@dataclass
class FakeCheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    external_id: str | None
    details_url: str | None
    output: dict[str, str | None]
    annotations: list[dict[str, Any]] = field(default_factory=list)
    app_slug: str = APP_SLUG  # another App's run, such as a CI's, names that App


@dataclass(frozen=True)
class FakeStatus:
    """A commit status, as CI systems set them (POST /repos/{owner}/{repo}/statuses/{sha})."""

    id: int
    sha: str
    state: str  # error, failure, pending, success
    context: str
    description: str | None
    created_at: datetime


@dataclass
class FakeComment:
    id: int
    owner: str
    repo: str
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    via_app: bool
    reactions: list[tuple[str, str]] = field(default_factory=list)


class Commits(Protocol):
    """A repository's branches and commits: in memory, or a real bare git repository."""

    clone_url: str | None

    def heads(self) -> dict[str, str]:
        """Branch name to the sha of its head commit."""
        ...

    def tree(self, sha: str) -> dict[str, bytes] | None:
        """Every file of a commit, or None if there is no such commit."""
        ...

    def commit(
        self, branch: str, tree: Mapping[str, bytes], *, message: str, when: datetime
    ) -> str:
        """Commit `tree` as the whole content on top of `branch` (created if new)."""
        ...

    def set_head(self, branch: str, sha: str) -> None: ...

    def delete_head(self, branch: str) -> None: ...

    def ahead(self, base: str, head: str) -> int:
        """How many commits `head` has that `base` has not (0: nothing to merge)."""
        ...


class MemoryCommits:
    """Commits as dictionaries; shas are made up, and nothing can clone them."""

    clone_url: str | None = None

    def __init__(self, new_sha: Callable[[], str]) -> None:
        self._new_sha = new_sha
        self._heads: dict[str, str] = {}
        self._trees: dict[str, dict[str, bytes]] = {}
        self._parents: dict[str, str | None] = {}

    def heads(self) -> dict[str, str]:
        return dict(self._heads)

    def tree(self, sha: str) -> dict[str, bytes] | None:
        return self._trees.get(sha)

    def commit(
        self, branch: str, tree: Mapping[str, bytes], *, message: str, when: datetime
    ) -> str:
        sha = self._new_sha()
        self._trees[sha] = dict(tree)
        self._parents[sha] = self._heads.get(branch)
        self._heads[branch] = sha
        return sha

    def set_head(self, branch: str, sha: str) -> None:
        self._heads[branch] = sha

    def delete_head(self, branch: str) -> None:
        del self._heads[branch]

    def ahead(self, base: str, head: str) -> int:
        behind = set(self._history(base))
        history = self._history(head)
        return next((i for i, sha in enumerate(history) if sha in behind), len(history))

    def _history(self, sha: str | None) -> list[str]:
        line = []
        while sha is not None:
            line.append(sha)
            sha = self._parents.get(sha)
        return line


class GitCommits:
    """A real bare repository on disk: `git clone` and `git push` reach it at `clone_url`."""

    def __init__(self, path: Path, *, default_branch: str) -> None:
        self.path = path
        self.clone_url: str | None = path.as_uri()
        self._trees: dict[str, dict[str, bytes]] = {}  # commits never change: cache them
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path))

    def heads(self) -> dict[str, str]:
        """Read as git reads them, without starting git: packed refs, then loose ones."""
        # https://git-scm.com/docs/git-pack-refs: a loose ref outranks its packed copy.
        heads: dict[str, str] = {}
        packed = self.path / "packed-refs"
        lines = packed.read_text().splitlines() if packed.exists() else []
        for line in lines:
            sha, _, ref = line.partition(" ")
            if SHA.fullmatch(sha) and ref.startswith("refs/heads/"):
                heads[ref.removeprefix("refs/heads/")] = sha
        loose = self.path / "refs" / "heads"
        for file in loose.rglob("*"):
            if file.is_file() and not file.name.endswith(".lock"):
                heads[file.relative_to(loose).as_posix()] = file.read_text().strip()
        return heads

    def tree(self, sha: str) -> dict[str, bytes] | None:
        if sha in self._trees:
            return self._trees[sha]
        if (
            not SHA.fullmatch(sha)
            or self._git("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode
        ):
            return None
        listing = self._git("ls-tree", "-r", "-z", "--full-tree", sha).stdout
        blobs: dict[str, str] = {}
        for record in filter(None, listing.split(b"\0")):
            meta, _, path = record.partition(b"\t")
            _, kind, blob = meta.decode().split()
            if kind == "blob":
                blobs[path.decode()] = blob
        contents = self._blobs(list(blobs.values()))
        self._trees[sha] = {path: contents[blob] for path, blob in blobs.items()}
        return self._trees[sha]

    def commit(
        self, branch: str, tree: Mapping[str, bytes], *, message: str, when: datetime
    ) -> str:
        parent = self.heads().get(branch)
        text = message.encode()
        lines = [
            f"commit refs/heads/{branch}\n".encode(),
            f"committer {GIT_IDENTITY} {int(when.timestamp())} +0000\n".encode(),
            b"data %d\n%s\n" % (len(text), text),
            f"from {parent}\n".encode() if parent else b"",
            b"deleteall\n",
        ]
        for path, content in sorted(tree.items()):
            lines.append(b"M 100644 inline " + _quoted_path(path) + b"\n")
            lines.append(b"data %d\n%s\n" % (len(content), content))
        self._git("fast-import", "--quiet", stdin=b"".join(lines))
        return self.heads()[branch]

    def set_head(self, branch: str, sha: str) -> None:
        self._git("update-ref", f"refs/heads/{branch}", sha)

    def delete_head(self, branch: str) -> None:
        self._git("update-ref", "-d", f"refs/heads/{branch}")

    def ahead(self, base: str, head: str) -> int:
        return int(self._git("rev-list", "--count", f"{base}..{head}").stdout)

    def _blobs(self, shas: list[str]) -> dict[str, bytes]:
        if not shas:
            return {}
        out = self._git("cat-file", "--batch", stdin="".join(f"{s}\n" for s in shas).encode())
        blobs: dict[str, bytes] = {}
        position = 0
        while position < len(out.stdout):
            header_end = out.stdout.index(b"\n", position)
            sha, _, size = out.stdout[position:header_end].decode().split()
            start = header_end + 1
            blobs[sha] = out.stdout[start : start + int(size)]
            position = start + int(size) + 1
        return blobs

    def _git(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return _git(f"--git-dir={self.path}", *args, stdin=stdin, check=check)


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    installation_id: int
    default_branch: str
    created_at: datetime
    commits: Commits
    fork: bool = False
    collaborators: dict[str, str] = field(default_factory=dict)
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    check_runs: dict[int, FakeCheckRun] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    statuses: list[FakeStatus] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def next_number(self) -> int:
        return max(self.issues, default=0) + 1


class FakeGitHub:
    """GitHub's REST API for one App, in memory, on 127.0.0.1, in a thread of its own.

    Start it once with `start()`; `reset()` forgets every repository, token and script.
    Seed with `add_repo` (`git=True` for a real bare repository behind it), `set_file`,
    `add_branch`, `set_permission`, `add_issue`, `add_pull`, `add_comment`, another App's
    `add_check_run`, a CI's `add_status`; assert on
    `comments`, `labels`, `reactions`, `pulls`, `check_runs`, `branches`, `branch_files`,
    `requests`; script failures with `fail_next`.
    """

    def __init__(self, *, app_id: str, public_key: str | bytes) -> None:
        self.app_id = app_id
        self._public_key = public_key
        self._lock = threading.RLock()
        self._git_root: Path | None = None
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.reset()

    # Life cycle

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="fake-github", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake GitHub did not start")
        self.public_url = self.url

    def _serve(self, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self._application(), access_log=None, shutdown_timeout=1.0)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None
        self._remove_git_repositories()

    def reset(self) -> None:
        """Forget all state, git repositories on disk included; the time goes back to the wall."""
        with self._lock:
            self._remove_git_repositories()
            self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
            self.public_url = self.url
            self.installations: dict[int, str] = {}
            self.tokens: dict[str, tuple[int, datetime]] = {}
            self.requests: list[RecordedRequest] = []
            self._repos: dict[tuple[str, str], FakeRepo] = {}
            self._comments: dict[int, FakeComment] = {}
            self._failures: list[Failure] = []
            self._ids = itertools.count(1001)
            self._remaining = RATE_LIMIT
            self._generation += 1

    # Seeding and assertions

    def add_installation(self, installation_id: int, account: str) -> None:
        with self._lock:
            self.installations[installation_id] = account

    def add_repo(
        self,
        owner: str,
        name: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, bytes] | None = None,
        installation_id: int = 1,
        git: bool = False,
    ) -> Repo:
        """A private repository whose default branch holds `files` as one commit.

        With `git=True` it is a real bare git repository on disk: its `clone_url` is a
        file:// URL, and what is pushed there is what the API answers about at once.
        """
        with self._lock:
            self.installations.setdefault(installation_id, owner)
            if git:
                path = self._git_repositories() / owner / f"{name}.git"
                commits: Commits = GitCommits(path, default_branch=default_branch)
            else:
                commits = MemoryCommits(self._made_up_sha)
            repo = FakeRepo(
                id=next(self._ids),
                owner=owner,
                name=name,
                installation_id=installation_id,
                default_branch=default_branch,
                created_at=self.now(),
                commits=commits,
            )
            self._repos[owner, name] = repo
            self._commit(repo, default_branch, dict(files or {}), message="Initial commit")
        return Repo(installation_id=installation_id, owner=owner, name=name)

    def set_file(
        self, owner: str, name: str, path: str, content: bytes | None, *, branch: str | None = None
    ) -> str:
        """Commit one file (None deletes it) on a branch; returns the new commit sha."""
        with self._lock:
            repo = self._repo(owner, name)
            branch = branch or repo.default_branch
            tree = dict(self._branch_tree(repo, branch))
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content
            verb = "Delete" if content is None else "Update"
            return self._commit(repo, branch, tree, message=f"{verb} {path}")

    def add_branch(
        self, owner: str, name: str, branch: str, *, from_branch: str | None = None
    ) -> str:
        with self._lock:
            repo = self._repo(owner, name)
            sha = repo.commits.heads()[from_branch or repo.default_branch]
            repo.commits.set_head(branch, sha)
            return sha

    def branch_sha(self, owner: str, name: str, branch: str) -> str:
        with self._lock:
            return self._repo(owner, name).commits.heads()[branch]

    def branches(self, owner: str, name: str) -> dict[str, str]:
        """Every branch and the sha of its head commit, as pushed and committed so far."""
        with self._lock:
            return self._repo(owner, name).commits.heads()

    def branch_files(self, owner: str, name: str, branch: str) -> dict[str, bytes]:
        """Every file on the branch's head commit."""
        with self._lock:
            return dict(self._branch_tree(self._repo(owner, name), branch))

    def clone_url(self, owner: str, name: str) -> str:
        """Where git clones a git-backed repository from (a file:// URL)."""
        with self._lock:
            url = self._repo(owner, name).commits.clone_url
            if url is None:
                raise ValueError(f"{owner}/{name} is in memory: add it with git=True")
            return url

    def set_permission(self, owner: str, name: str, user: str, role: str) -> None:
        """role: admin, maintain, write, triage, read (or a custom role based on one)."""
        with self._lock:
            self._repo(owner, name).collaborators[user] = role

    def add_issue(
        self,
        owner: str,
        name: str,
        *,
        number: int | None = None,
        title: str = "An issue",
        body: str = "",
        user: str = "octocat",
        labels: Iterable[str] = (),
        state: str = "open",
    ) -> int:
        with self._lock:
            repo = self._repo(owner, name)
            issue = self._new_issue(repo, number, title=title, body=body, user=user)
            for label in labels:
                self._label_issue(repo, issue, label)
            if state == "closed":
                issue.state, issue.closed_at = "closed", self.now()
            return issue.number

    def add_pull(
        self,
        owner: str,
        name: str,
        *,
        head: str,
        base: str | None = None,
        title: str = "A pull request",
        body: str = "",
        user: str = "octocat",
        number: int | None = None,
        head_repo_full_name: str | None = None,
        head_sha: str | None = None,
        draft: bool = False,
        labels: Iterable[str] = (),
        state: str = "open",
        merged: bool = False,
    ) -> int:
        """A pull request from branch `head` into `base` (default branch if None).

        `head` is a branch of this repository, or of `head_repo_full_name` for a pull
        request from a fork, which needs no repository of its own here (`head_sha` then
        names its head commit). A merged one is closed, merged by `user`.
        """
        with self._lock:
            repo = self._repo(owner, name)
            base = base or repo.default_branch
            head_repo = head_repo_full_name or repo.full_name
            if head_sha is None:
                head_sha = self._branch_head(head_repo, head) or self._made_up_sha()
            issue = self._new_issue(repo, number, title=title, body=body, user=user)
            for label in labels:
                self._label_issue(repo, issue, label)
            pull = FakePull(
                number=issue.number,
                id=next(self._ids),
                head_repo=head_repo,
                head_ref=head,
                head_sha=head_sha,
                base_ref=base,
                base_sha=repo.commits.heads()[base],
                draft=draft,
            )
            repo.pulls[pull.number] = pull
            if merged:
                pull.merged_at, pull.merged_by = self.now(), user
            if merged or state == "closed":
                self._set_state(issue, "closed")
            return pull.number

    def add_review(
        self,
        owner: str,
        name: str,
        number: int,
        *,
        user: str,
        state: str,
        body: str = "",
        commit_id: str | None = None,
        comments: Iterable[tuple[str, int, str]] = (),
    ) -> dict[str, Any]:
        """A review of pull request `number` on `commit_id` (its head if None), as GitHub
        answers for it; `comments` are inline ones as (path, line, body)."""
        with self._lock:
            repo = self._repo(owner, name)
            pull = repo.pulls[number]
            review = FakeReview(
                id=next(self._ids),
                user=user,
                state=state,
                body=body,
                commit_id=commit_id or self._head_sha(repo, pull),
                submitted_at=self.now(),
                comments=[
                    FakeReviewComment(next(self._ids), path, line, text)
                    for path, line, text in comments
                ],
            )
            pull.reviews.append(review)
            return self._review_json(repo, pull, review)

    def pulls(self, owner: str, name: str) -> list[dict[str, Any]]:
        """Every pull request, oldest first, as GitHub would answer for each one."""
        with self._lock:
            repo = self._repo(owner, name)
            return [self._pull_json(repo, pull) for _, pull in sorted(repo.pulls.items())]

    def check_runs(
        self, owner: str, name: str, head_sha: str | None = None
    ) -> list[dict[str, Any]]:
        """Every check run (on one commit if `head_sha` is given), oldest first."""
        with self._lock:
            repo = self._repo(owner, name)
            runs = sorted(repo.check_runs.values(), key=lambda run: run.id)
            return [
                self._check_run_json(repo, run)
                for run in runs
                if head_sha is None or run.head_sha == head_sha
            ]

    def annotations(self, owner: str, name: str, check_run_id: int) -> list[dict[str, Any]]:
        """Every annotation of a check run, in the order they were sent (GitHub appends them)."""
        with self._lock:
            return [dict(a) for a in self._repo(owner, name).check_runs[check_run_id].annotations]

    def add_check_run(
        self,
        owner: str,
        name: str,
        head_sha: str,
        *,
        check_name: str = "ci/test",
        status: str = "completed",
        conclusion: str | None = "success",
        app: str = "ci",
    ) -> int:
        """A check run of another App (a CI, by default) on `head_sha`; returns its id."""
        with self._lock:
            now = self.now()
            run = FakeCheckRun(
                id=next(self._ids),
                name=check_name,
                head_sha=head_sha,
                status=status,
                conclusion=conclusion if status == "completed" else None,
                started_at=now,
                completed_at=now if status == "completed" else None,
                external_id=None,
                details_url=None,
                output={"title": None, "summary": None, "text": None},
                app_slug=app,
            )
            self._repo(owner, name).check_runs[run.id] = run
            return run.id

    def merge_method(self, owner: str, name: str, number: int) -> str | None:
        """How the pull request was merged through the API (None: it was not)."""
        with self._lock:
            return self._repo(owner, name).pulls[number].merge_method

    def add_status(
        self, owner: str, name: str, sha: str, *, state: str, context: str = "ci/build"
    ) -> None:
        """A commit status on `sha`; a later one of the same context replaces it."""
        with self._lock:
            status = FakeStatus(next(self._ids), sha, state, context, None, self.now())
            self._repo(owner, name).statuses.append(status)

    def add_comment(
        self, owner: str, name: str, issue_number: int, body: str, *, user: str = "octocat"
    ) -> int:
        with self._lock:
            repo = self._repo(owner, name)
            return self._new_comment(repo, issue_number, body, user=user, via_app=False).id

    def comments(self, owner: str, name: str, issue_number: int) -> list[dict[str, Any]]:
        """The issue's comments as GitHub would list them."""
        with self._lock:
            repo = self._repo(owner, name)
            return [
                self._comment_json(repo, c)
                for c in self._comments.values()
                if (c.owner, c.repo, c.issue_number) == (owner, name, issue_number)
            ]

    def labels(self, owner: str, name: str, issue_number: int) -> list[str]:
        with self._lock:
            return list(self._repo(owner, name).issues[issue_number].labels)

    def reactions(self, comment_id: int) -> list[str]:
        with self._lock:
            return [content for _, content in self._comments[comment_id].reactions]

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` matching requests with `status` (after `delay` seconds)."""
        failure = Failure(
            method.upper(), re.compile(path_regex), status, dict(headers or {}), body, delay, times
        )
        with self._lock:
            self._failures.append(failure)

    def reset_failures(self) -> None:
        """GitHub answers again: every scripted failure not yet used is dropped."""
        with self._lock:
            self._failures.clear()

    # The HTTP application

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._recorded, self._scripted, self._conditional])
        repo = "/repos/{owner}/{repo}"
        app.router.add_get("/app", self._get_app)
        app.router.add_post(
            "/app/installations/{installation_id}/access_tokens", self._create_token
        )
        app.router.add_get(repo, self._get_repository)
        app.router.add_get(repo + "/collaborators/{username}/permission", self._get_permission)
        app.router.add_get(repo + "/git/ref/{ref:.+}", self._get_ref)
        app.router.add_delete(repo + "/git/refs/{ref:.+}", self._delete_ref)
        app.router.add_get(repo + "/contents/{path:.*}", self._get_content)
        app.router.add_patch(repo + "/issues/comments/{comment_id:\\d+}", self._update_comment)
        app.router.add_post(
            repo + "/issues/comments/{comment_id:\\d+}/reactions", self._create_reaction
        )
        app.router.add_get(repo + "/issues/{number:\\d+}/comments", self._list_comments)
        app.router.add_post(repo + "/issues/{number:\\d+}/comments", self._create_comment)
        app.router.add_post(repo + "/issues/{number:\\d+}/labels", self._add_labels)
        app.router.add_delete(repo + "/issues/{number:\\d+}/labels/{name}", self._remove_label)
        app.router.add_get(repo + "/issues/{number:\\d+}", self._get_issue)
        app.router.add_get(repo + "/pulls", self._list_pulls)
        app.router.add_post(repo + "/pulls", self._create_pull)
        app.router.add_get(repo + "/pulls/{number:\\d+}", self._get_pull)
        app.router.add_get(repo + "/pulls/{number:\\d+}/files", self._list_pull_files)
        app.router.add_patch(repo + "/pulls/{number:\\d+}", self._update_pull)
        app.router.add_put(repo + "/pulls/{number:\\d+}/merge", self._merge_pull)
        app.router.add_get(repo + "/pulls/{number:\\d+}/reviews", self._list_reviews)
        app.router.add_get(
            repo + "/pulls/{number:\\d+}/reviews/{review_id:\\d+}/comments",
            self._list_review_comments,
        )
        app.router.add_post(repo + "/check-runs", self._create_check_run)
        app.router.add_patch(repo + "/check-runs/{check_run_id:\\d+}", self._update_check_run)
        app.router.add_get(repo + "/commits/{ref:.+}/check-runs", self._list_check_runs)
        app.router.add_get(repo + "/commits/{ref:.+}/status", self._combined_status)
        return app

    @web.middleware
    async def _recorded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        generation = self._generation  # a request still running at a reset is not recorded
        try:
            response = await handler(request)
        except Answer as answer:
            response = self._error(answer)
        except web.HTTPException as exc:
            response = self._error(Answer(exc.status, exc.reason))
        with self._lock:
            for name, value in self._rate_limit_headers().items():
                response.headers.setdefault(name, value)
            if generation != self._generation:
                return response
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.raw_path.partition("?")[0],
                    dict(request.query),
                    {k.lower(): v for k, v in request.headers.items()},
                    response.status,
                )
            )
        return response

    @web.middleware
    async def _scripted(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        failure = self._take_failure(request)
        if failure is None:
            return await handler(request)
        if failure.delay:
            await asyncio.sleep(failure.delay)
        phrase = HTTPStatus(failure.status).phrase
        body = failure.body if failure.body is not None else _error_body(failure.status, phrase)
        response = web.json_response(body, status=failure.status)
        response.headers.update(failure.headers)
        return response

    @web.middleware
    async def _conditional(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """ETag every successful read, and answer 304 when the client already has it."""
        response = await handler(request)
        if request.method != "GET" or response.status != 200:
            return response
        assert isinstance(response, web.Response) and response.body is not None
        body = response.body if isinstance(response.body, bytes) else b""
        etag = f'W/"{hashlib.sha256(body).hexdigest()[:40]}"'
        response.headers["ETag"] = etag
        wanted = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
        if etag in wanted:
            return web.Response(status=304, headers={"ETag": etag})
        return response

    def _take_failure(self, request: web.Request) -> Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.method == request.method and failure.path.search(request.path):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    # Handlers

    async def _create_token(self, request: web.Request) -> web.Response:
        claims = self._verified_jwt(request.headers.get("Authorization", ""))
        installation_id = int(request.match_info["installation_id"])
        with self._lock:
            if str(claims["iss"]) != self.app_id or installation_id not in self.installations:
                raise Answer(404, "Not Found")
            token = "ghs_" + secrets.token_hex(18)
            expires_at = self.now() + TOKEN_LIFETIME
            self.tokens[token] = (installation_id, expires_at)
        body = {
            "token": token,
            "expires_at": _timestamp(expires_at),
            "permissions": {
                "checks": "write",
                "contents": "write",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
            },
            "repository_selection": "all",
        }
        return web.json_response(body, status=201)

    def _verified_jwt(self, authorization: str) -> dict[str, Any]:
        """GitHub's checks on an App's JWT: RS256 by the App's key, iat not ahead, exp near."""
        # https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise Answer(401, "A JSON web token could not be decoded")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["iat", "exp", "iss"],
                },
            )
        except jwt.PyJWTError as exc:
            raise Answer(401, "A JSON web token could not be decoded") from exc
        now = self.now().timestamp()
        if claims["iat"] > now + 60:
            raise Answer(401, "'Issued at' claim ('iat') must be an Integer in the past")
        if not now < claims["exp"] <= now + 600:
            raise Answer(401, "'Expiration time' claim ('exp') is too far in the future")
        return claims

    async def _get_app(self, request: web.Request) -> web.Response:
        claims = self._verified_jwt(request.headers.get("Authorization", ""))
        if str(claims["iss"]) != self.app_id:
            raise Answer(401, "A JSON web token could not be decoded")
        return web.json_response(self._app_json())

    async def _get_repository(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response(self._repository_json(self._visible_repo(request)))

    async def _get_permission(self, request: web.Request) -> web.Response:
        username = request.match_info["username"]
        with self._lock:
            repo = self._visible_repo(request)
            role = repo.collaborators.get(username)
            if role is None:
                raise Answer(404, f"{username} is not a user")
            user = _user(self._api, username, _user_id(username)) | {"role_name": role}
            user["permissions"] = _permission_flags(role)
            body = {"permission": LEGACY_PERMISSION.get(role, "read"), "role_name": role}
            return web.json_response(body | {"user": user})

    async def _get_ref(self, request: web.Request) -> web.Response:
        ref = request.match_info["ref"]
        with self._lock:
            repo = self._visible_repo(request)
            branch = ref.removeprefix("heads/")
            if not ref.startswith("heads/") or branch not in repo.commits.heads():
                raise Answer(404, "Not Found")
            return web.json_response(self._ref_json(repo, branch))

    async def _delete_ref(self, request: web.Request) -> web.Response:
        """Delete a branch; like GitHub, close the open pull requests it was the head of."""
        # https://docs.github.com/en/rest/git/refs#delete-a-reference
        ref = request.match_info["ref"]
        with self._lock:
            repo = self._visible_repo(request)
            branch = ref.removeprefix("heads/")
            if not ref.startswith("heads/") or branch not in repo.commits.heads():
                raise Answer(422, "Reference does not exist")
            if branch == repo.default_branch:
                raise Answer(422, "Cannot delete the default branch")
            for pull in repo.pulls.values():
                if (pull.head_repo, pull.head_ref) == (repo.full_name, branch):
                    pull.head_sha = self._head_sha(repo, pull)
                    self._set_state(repo.issues[pull.number], "closed")
            repo.commits.delete_head(branch)
        return web.Response(status=204)

    async def _get_content(self, request: web.Request) -> web.Response:
        path = request.match_info["path"].strip("/")
        with self._lock:
            repo = self._visible_repo(request)
            ref = request.query.get("ref") or repo.default_branch
            tree = self._tree(repo, ref)
            if path in tree:
                return web.json_response(self._file_json(repo, ref, path, tree[path]))
            entries = self._directory(repo, ref, path, tree)
            if not entries:
                raise Answer(404, "Not Found")
            return web.json_response(entries)

    async def _list_comments(self, request: web.Request) -> web.Response:
        with self._lock:
            repo, issue = self._visible_issue(request)
            everything = [
                self._comment_json(repo, c)
                for c in self._comments.values()
                if (c.owner, c.repo, c.issue_number) == (repo.owner, repo.name, issue.number)
            ]
            url = f"{self._api}/repos/{repo.full_name}/issues/{issue.number}/comments"
        return _paged(request, url, everything, lambda page: page)

    async def _create_comment(self, request: web.Request) -> web.Response:
        body = _string_field(await _json(request), "body", resource="IssueComment")
        with self._lock:
            repo, issue = self._visible_issue(request)
            comment = self._new_comment(repo, issue.number, body, user=BOT_LOGIN, via_app=True)
            payload = self._comment_json(repo, comment)
        return web.json_response(payload, status=201, headers={"Location": payload["url"]})

    async def _update_comment(self, request: web.Request) -> web.Response:
        body = _string_field(await _json(request), "body", resource="IssueComment")
        with self._lock:
            repo, comment = self._visible_comment(request)
            comment.body = body
            comment.updated_at = self.now()
            return web.json_response(self._comment_json(repo, comment))

    async def _create_reaction(self, request: web.Request) -> web.Response:
        content = _string_field(await _json(request), "content", resource="Reaction")
        if content not in REACTIONS:
            raise Answer(422, "Validation Failed", errors=[_invalid("Reaction", "content")])
        with self._lock:
            _, comment = self._visible_comment(request)
            exists = (BOT_LOGIN, content) in comment.reactions
            if not exists:
                comment.reactions.append((BOT_LOGIN, content))
            reaction = {
                "id": _stable_id(f"{comment.id}:{content}"),
                "node_id": f"REA_{comment.id}_{REACTIONS.index(content)}",
                "user": self._bot_user(),
                "content": content,
                "created_at": _timestamp(self.now()),
            }
        return web.json_response(reaction, status=200 if exists else 201)

    async def _add_labels(self, request: web.Request) -> web.Response:
        payload = await _json(request)
        names = payload.get("labels") if isinstance(payload, dict) else payload
        if not isinstance(names, list) or not names:
            raise Answer(422, "Validation Failed", errors=[_invalid("Label", "labels")])
        with self._lock:
            repo, issue = self._visible_issue(request)
            for name in names:
                self._label_issue(repo, issue, name if isinstance(name, str) else name["name"])
            return web.json_response([self._label_json(repo, n) for n in issue.labels])

    async def _remove_label(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self._lock:
            repo, issue = self._visible_issue(request)
            if name not in issue.labels:
                raise Answer(404, "Label does not exist")
            issue.labels.remove(name)
            return web.json_response([self._label_json(repo, n) for n in issue.labels])

    async def _get_issue(self, request: web.Request) -> web.Response:
        with self._lock:
            repo, issue = self._visible_issue(request)
            return web.json_response(self._issue_json(repo, issue))

    async def _list_pulls(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "open")
        head = request.query.get("head")
        base = request.query.get("base")
        with self._lock:
            repo = self._visible_repo(request)
            chosen = [
                self._pull_json(repo, pull, simple=True)
                for _, pull in sorted(repo.pulls.items(), reverse=True)  # newest first
                if state in ("all", repo.issues[pull.number].state)
                and (head is None or head in (pull.head_ref, f"{pull.head_owner}:{pull.head_ref}"))
                and (base is None or base == pull.base_ref)
            ]
            url = f"{self._api}/repos/{repo.full_name}/pulls"
        return _paged(request, url, chosen, lambda page: page)

    async def _get_pull(self, request: web.Request) -> web.Response:
        with self._lock:
            repo, pull = self._visible_pull(request)
            return web.json_response(self._pull_json(repo, pull))

    async def _list_pull_files(self, request: web.Request) -> web.Response:
        """The files the pull request's head changes over its base, by path, paged."""
        # https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
        with self._lock:
            repo, pull = self._visible_pull(request)
            head_sha, base_sha = self._head_sha(repo, pull), self._base_sha(repo, pull)
            old, new = repo.commits.tree(base_sha) or {}, repo.commits.tree(head_sha) or {}
            entries = [
                self._diff_entry_json(repo, head_sha, path, old.get(path), new.get(path))
                for path in sorted(old.keys() | new.keys())
                if old.get(path) != new.get(path)
            ]
            url = f"{self._api}/repos/{repo.full_name}/pulls/{pull.number}/files"
        return _paged(request, url, entries, lambda page: page)

    async def _list_reviews(self, request: web.Request) -> web.Response:
        """The pull request's reviews, oldest first, paged."""
        # https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request
        with self._lock:
            repo, pull = self._visible_pull(request)
            reviews = [self._review_json(repo, pull, review) for review in pull.reviews]
            url = f"{self._api}/repos/{repo.full_name}/pulls/{pull.number}/reviews"
        return _paged(request, url, reviews, lambda page: page)

    async def _list_review_comments(self, request: web.Request) -> web.Response:
        """One review's inline comments, paged; an unknown review is a 404."""
        # https://docs.github.com/en/rest/pulls/reviews#list-comments-for-a-pull-request-review
        with self._lock:
            repo, pull = self._visible_pull(request)
            review_id = int(request.match_info["review_id"])
            review = next((r for r in pull.reviews if r.id == review_id), None)
            if review is None:
                raise Answer(404, "Not Found")
            comments = [
                self._review_comment_json(repo, pull, review, comment)
                for comment in review.comments
            ]
            url = f"{self._api}/repos/{repo.full_name}/pulls/{pull.number}/reviews/{review_id}"
        return _paged(request, f"{url}/comments", comments, lambda page: page)

    async def _create_pull(self, request: web.Request) -> web.Response:
        """Open a pull request, refused as GitHub refuses: unknown branches, a second one
        from the same head, or a head with nothing the base lacks."""
        # https://docs.github.com/en/rest/pulls/pulls#create-a-pull-request
        payload = await _json(request)
        head = _string_field(payload, "head", resource="PullRequest")
        base = _string_field(payload, "base", resource="PullRequest")
        title = _string_field(payload, "title", resource="PullRequest")
        body = payload.get("body")
        with self._lock:
            repo = self._visible_repo(request)
            head_owner, _, head_ref = head.rpartition(":")
            head_repo = f"{head_owner or repo.owner}/{repo.name}"
            head_sha = self._branch_head(head_repo, head_ref)
            base_sha = repo.commits.heads().get(base)
            if base_sha is None:
                raise Answer(422, "Validation Failed", errors=[_invalid("PullRequest", "base")])
            if head_sha is None:
                raise Answer(422, "Validation Failed", errors=[_invalid("PullRequest", "head")])
            label = f"{head_repo.partition('/')[0]}:{head_ref}"
            if self._open_pull(repo, head_repo, head_ref, base) is not None:
                raise Answer(
                    422,
                    "Validation Failed",
                    errors=[_custom("PullRequest", f"A pull request already exists for {label}.")],
                )
            if head_repo == repo.full_name and not repo.commits.ahead(base_sha, head_sha):
                raise Answer(
                    422,
                    "Validation Failed",
                    errors=[_custom("PullRequest", f"No commits between {base} and {head_ref}")],
                )
            issue = self._new_issue(repo, None, title=title, body=body, user=BOT_LOGIN)
            pull = FakePull(
                number=issue.number,
                id=next(self._ids),
                head_repo=head_repo,
                head_ref=head_ref,
                head_sha=head_sha,
                base_ref=base,
                base_sha=base_sha,
                draft=bool(payload.get("draft", False)),
                maintainer_can_modify=bool(payload.get("maintainer_can_modify", False)),
            )
            repo.pulls[pull.number] = pull
            answer = self._pull_json(repo, pull)
        return web.json_response(answer, status=201, headers={"Location": answer["url"]})

    async def _update_pull(self, request: web.Request) -> web.Response:
        payload = await _json(request)
        if not isinstance(payload, dict):
            raise Answer(400, "Problems parsing JSON")
        with self._lock:
            repo, pull = self._visible_pull(request)
            issue = repo.issues[pull.number]
            state = payload.get("state", issue.state)
            if state not in ("open", "closed"):
                raise Answer(422, "Validation Failed", errors=[_invalid("PullRequest", "state")])
            reopened = state == "open" and issue.state == "closed"
            if reopened and (
                pull.merged_at or self._branch_head(pull.head_repo, pull.head_ref) is None
            ):
                raise Answer(
                    422,
                    "Validation Failed",
                    errors=[
                        _custom("PullRequest", "state cannot be changed. The head branch is gone.")
                    ],
                )
            base = payload.get("base", pull.base_ref)
            if base not in repo.commits.heads():
                raise Answer(422, "Validation Failed", errors=[_invalid("PullRequest", "base")])
            issue.title = str(payload.get("title", issue.title))
            issue.body = payload.get("body", issue.body)
            pull.base_ref = base
            self._set_state(issue, state)
            return web.json_response(self._pull_json(repo, pull))

    async def _merge_pull(self, request: web.Request) -> web.Response:
        """Merge as GitHub does, refused unless the pull request is open, ready and at `sha`.

        The base branch takes the head's files as one new commit, whatever the method. A head
        that lacks commits of its base is refused as not mergeable, as branch protection
        that wants branches up to date refuses it.
        """
        # https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request
        payload = await _json(request) or {}
        if not isinstance(payload, dict):
            raise Answer(400, "Problems parsing JSON")
        if payload.get("merge_method", "merge") not in MERGE_METHODS:
            raise Answer(422, "Validation Failed", errors=[_invalid("PullRequest", "merge_method")])
        with self._lock:
            repo, pull = self._visible_pull(request)
            issue = repo.issues[pull.number]
            head_sha, base_sha = self._head_sha(repo, pull), self._base_sha(repo, pull)
            if issue.state != "open" or pull.draft:
                raise Answer(405, "Pull Request is not mergeable")
            if payload.get("sha", head_sha) != head_sha:
                raise Answer(409, "Head branch was modified. Review and try the merge again.")
            tree = repo.commits.tree(head_sha)
            if tree is None:  # a fork's head: its commits are not here to merge
                merge_sha = self._made_up_sha()
            elif repo.commits.ahead(head_sha, base_sha):
                raise Answer(405, "Pull Request is not mergeable")
            else:
                title = payload.get("commit_title") or f"{issue.title} (#{pull.number})"
                merge_sha = self._commit(repo, pull.base_ref, dict(tree), message=str(title))
            pull.merged_at, pull.merged_by = self.now(), BOT_LOGIN
            pull.merge_method = str(payload.get("merge_method", "merge"))
            self._set_state(issue, "closed")
        merged = {"sha": merge_sha, "merged": True, "message": "Pull Request successfully merged"}
        return web.json_response(merged)

    async def _create_check_run(self, request: web.Request) -> web.Response:
        # https://docs.github.com/en/rest/checks/runs#create-a-check-run
        payload = await _json(request)
        name = _string_field(payload, "name", resource="CheckRun")
        head_sha = _string_field(payload, "head_sha", resource="CheckRun")
        output = payload.get("output")
        if output is not None:
            _string_field(output, "title", resource="CheckRun")
            _string_field(output, "summary", resource="CheckRun")
        now = self.now()
        run = FakeCheckRun(
            id=next(self._ids),
            name=name,
            head_sha=head_sha,
            status="queued",
            conclusion=None,
            started_at=now,
            completed_at=None,
            external_id=None,
            details_url=None,
            output={"title": None, "summary": None, "text": None},
        )
        _apply_check_run(run, payload, now=now)
        with self._lock:
            repo = self._visible_repo(request)
            if not self._known_commit(repo, head_sha):
                raise Answer(422, f"No commit found for SHA: {head_sha}")
            repo.check_runs[run.id] = run
            answer = self._check_run_json(repo, run)
        return web.json_response(answer, status=201)

    async def _update_check_run(self, request: web.Request) -> web.Response:
        # https://docs.github.com/en/rest/checks/runs#update-a-check-run
        payload = await _json(request)
        output = payload.get("output") if isinstance(payload, dict) else None
        if output is not None:
            _string_field(output, "summary", resource="CheckRun")
        with self._lock:
            repo = self._visible_repo(request)
            run = repo.check_runs.get(int(request.match_info["check_run_id"]))
            if run is None:
                raise Answer(404, "Not Found")
            _apply_check_run(run, payload, now=self.now())
            return web.json_response(self._check_run_json(repo, run))

    async def _list_check_runs(self, request: web.Request) -> web.Response:
        """The check runs on a commit, by name, status and App, the latest per name or all."""
        # https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference
        query = request.query
        with self._lock:
            repo = self._visible_repo(request)
            ref = request.match_info["ref"]
            sha = self._resolve(repo, ref)
            if sha is None and not self._known_commit(repo, ref):
                raise Answer(422, f"No commit found for SHA: {ref}")
            runs = [
                run
                for run in sorted(repo.check_runs.values(), key=lambda r: r.id, reverse=True)
                if run.head_sha == (sha or ref)
                and query.get("check_name", run.name) == run.name
                and query.get("status", run.status) == run.status
                and query.get("app_id", str(self._run_app_id(run))) == str(self._run_app_id(run))
            ]
            if query.get("filter", "latest") == "latest":
                latest = {run.name: run for run in reversed(runs)}
                runs = [run for run in runs if latest[run.name] is run]
            chosen = [self._check_run_json(repo, run) for run in runs]
            url = f"{self._api}/repos/{repo.full_name}/commits/{quote(ref, safe='')}/check-runs"
        return _paged(
            request, url, chosen, lambda page: {"total_count": len(chosen), "check_runs": page}
        )

    async def _combined_status(self, request: web.Request) -> web.Response:
        """The latest status of each context on a commit, rolled into one state."""
        # https://docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-reference
        with self._lock:
            repo = self._visible_repo(request)
            ref = request.match_info["ref"]
            sha = self._resolve(repo, ref) or (ref if self._known_commit(repo, ref) else None)
            if sha is None:
                raise Answer(404, f"No commit found for SHA: {ref}")
            latest = {status.context: status for status in repo.statuses if status.sha == sha}
            statuses = sorted(latest.values(), key=lambda status: status.id)
            states = {status.state for status in statuses}
            # "failure if any of the contexts report as error or failure; pending if there
            # are no statuses or a context is pending; success if ... all contexts" are.
            if states & {"error", "failure"}:
                state = "failure"
            elif not statuses or "pending" in states:
                state = "pending"
            else:
                state = "success"
            api = f"{self._api}/repos/{repo.full_name}"
            combined = {
                "state": state,
                "sha": sha,
                "total_count": len(statuses),
                "repository": self._repository_json(repo),
                "commit_url": f"{api}/commits/{sha}",
                "url": f"{api}/commits/{sha}/status",
            }
            chosen = [self._status_json(repo, status) for status in statuses]
        url = f"{api}/commits/{quote(ref, safe='')}/status"
        return _paged(request, url, chosen, lambda page: combined | {"statuses": page})

    # State

    def _repo(self, owner: str, name: str) -> FakeRepo:
        try:
            return self._repos[owner, name]
        except KeyError:
            raise KeyError(f"the fake GitHub has no repository {owner}/{name}") from None

    def _installation_of(self, request: web.Request) -> int | None:
        """The installation whose token authorizes the request; None when anonymous."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not scheme:
            return None
        found = self.tokens.get(token) if scheme.lower() in ("token", "bearer") else None
        if found is None or found[1] <= self.now():
            raise Answer(401, "Bad credentials")
        return found[0]

    def _visible_repo(self, request: web.Request) -> FakeRepo:
        """The repository, if the caller's installation may see it (every repo is private)."""
        installation = self._installation_of(request)
        repo = self._repos.get((request.match_info["owner"], request.match_info["repo"]))
        if repo is None or repo.installation_id != installation:
            raise Answer(404, "Not Found")
        return repo

    def _visible_issue(self, request: web.Request) -> tuple[FakeRepo, FakeIssue]:
        repo = self._visible_repo(request)
        issue = repo.issues.get(int(request.match_info["number"]))
        if issue is None:
            raise Answer(404, "Not Found")
        return repo, issue

    def _visible_comment(self, request: web.Request) -> tuple[FakeRepo, FakeComment]:
        repo = self._visible_repo(request)
        comment = self._comments.get(int(request.match_info["comment_id"]))
        if comment is None or (comment.owner, comment.repo) != (repo.owner, repo.name):
            raise Answer(404, "Not Found")
        return repo, comment

    def _visible_pull(self, request: web.Request) -> tuple[FakeRepo, FakePull]:
        repo = self._visible_repo(request)
        pull = repo.pulls.get(int(request.match_info["number"]))
        if pull is None:
            raise Answer(404, "Not Found")
        return repo, pull

    def _made_up_sha(self) -> str:
        return hashlib.sha1(f"commit {next(self._ids)}".encode()).hexdigest()  # noqa: S324 - a git object name, not security

    def _git_repositories(self) -> Path:
        if self._git_root is None:
            self._git_root = Path(tempfile.mkdtemp(prefix="fake-github-"))
        return self._git_root

    def _remove_git_repositories(self) -> None:
        if self._git_root is not None:
            shutil.rmtree(self._git_root, ignore_errors=True)
            self._git_root = None

    def _commit(self, repo: FakeRepo, branch: str, tree: dict[str, bytes], *, message: str) -> str:
        return repo.commits.commit(branch, tree, message=message, when=self.now())

    def _resolve(self, repo: FakeRepo, ref: str) -> str | None:
        """The commit sha a branch name (bare, heads/ or refs/heads/) or a sha stands for."""
        heads = repo.commits.heads()
        branch = ref.removeprefix("refs/").removeprefix("heads/")
        if branch in heads:
            return heads[branch]
        return ref if repo.commits.tree(ref) is not None else None

    def _tree(self, repo: FakeRepo, ref: str) -> dict[str, bytes]:
        sha = self._resolve(repo, ref)
        tree = None if sha is None else repo.commits.tree(sha)
        if tree is None:
            raise Answer(404, f"No commit found for the ref {ref}")
        return tree

    def _branch_tree(self, repo: FakeRepo, branch: str) -> dict[str, bytes]:
        tree = repo.commits.tree(repo.commits.heads()[branch])
        assert tree is not None
        return tree

    def _branch_head(self, full_name: str, branch: str) -> str | None:
        """The head sha of a branch of a repository here; None if either is missing."""
        repo = self._repos.get((full_name.partition("/")[0], full_name.partition("/")[2]))
        return None if repo is None else repo.commits.heads().get(branch)

    def _head_sha(self, repo: FakeRepo, pull: FakePull) -> str:
        """An open pull request follows its head branch; a closed one keeps its last head."""
        if repo.issues[pull.number].state == "open":
            pull.head_sha = self._branch_head(pull.head_repo, pull.head_ref) or pull.head_sha
        return pull.head_sha

    def _base_sha(self, repo: FakeRepo, pull: FakePull) -> str:
        if repo.issues[pull.number].state == "open":
            pull.base_sha = repo.commits.heads().get(pull.base_ref, pull.base_sha)
        return pull.base_sha

    def _known_commit(self, repo: FakeRepo, sha: str) -> bool:
        """A commit of the repository, or the head of a pull request into it from a fork."""
        heads = {pull.head_sha for pull in repo.pulls.values()}
        return repo.commits.tree(sha) is not None or sha in heads

    def _open_pull(
        self, repo: FakeRepo, head_repo: str, head_ref: str, base: str
    ) -> FakePull | None:
        return next(
            (
                pull
                for pull in repo.pulls.values()
                if (pull.head_repo, pull.head_ref, pull.base_ref) == (head_repo, head_ref, base)
                and repo.issues[pull.number].state == "open"
            ),
            None,
        )

    def _new_issue(
        self, repo: FakeRepo, number: int | None, *, title: str, body: str | None, user: str
    ) -> FakeIssue:
        number = number or repo.next_number()  # a number given again replaces that issue
        repo.pulls.pop(number, None)
        issue = FakeIssue(number, next(self._ids), title, body, user, self.now())
        repo.issues[number] = issue
        return issue

    def _set_state(self, issue: FakeIssue, state: str) -> None:
        if state != issue.state:
            issue.state = state
            issue.closed_at = self.now() if state == "closed" else None
        issue.updated_at = self.now()

    def _app_id(self) -> int:
        return int(self.app_id) if self.app_id.isdigit() else 1

    def _run_app_id(self, run: FakeCheckRun) -> int:
        return self._app_id() if run.app_slug == APP_SLUG else _stable_id(run.app_slug)

    def _new_comment(
        self, repo: FakeRepo, issue_number: int, body: str, *, user: str, via_app: bool
    ) -> FakeComment:
        if issue_number not in repo.issues:
            raise KeyError(f"{repo.full_name} has no issue #{issue_number}")
        now = self.now()
        comment = FakeComment(
            next(self._ids), repo.owner, repo.name, issue_number, body, user, now, now, via_app
        )
        self._comments[comment.id] = comment
        return comment

    def _label_issue(self, repo: FakeRepo, issue: FakeIssue, name: str) -> None:
        repo.labels.setdefault(name, next(self._ids))
        if name not in issue.labels:
            issue.labels.append(name)

    def _rate_limit_headers(self) -> dict[str, str]:
        self._remaining = max(self._remaining - 1, 1)
        reset = self.now() + timedelta(hours=1)
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(self._remaining),
            "X-RateLimit-Used": str(RATE_LIMIT - self._remaining),
            "X-RateLimit-Reset": str(int(reset.timestamp())),
            "X-RateLimit-Resource": "core",
        }

    # GitHub's shapes

    @property
    def _api(self) -> str:
        return self.public_url.rstrip("/")

    def _error(self, answer: Answer) -> web.Response:
        body = _error_body(answer.status, answer.message)
        if answer.errors is not None:
            body["errors"] = answer.errors
        return web.json_response(body, status=answer.status)

    def _bot_user(self) -> dict[str, Any]:
        return _user(self._api, BOT_LOGIN, BOT_USER_ID, kind="Bot")

    def _app_json(self) -> dict[str, Any]:
        created = _timestamp(datetime(2026, 1, 1, tzinfo=UTC))
        return {
            "id": self._app_id(),
            "slug": APP_SLUG,
            "node_id": f"A_{APP_SLUG}",
            "client_id": "Iv1.bosun",
            "owner": _user(self._api, "bosun-org", 9_000_001, kind="Organization"),
            "name": "Bosun",
            "description": "Schedules coding agents",
            "external_url": "https://bosun.example.com",
            "html_url": f"{WEB}/apps/{APP_SLUG}",
            "created_at": created,
            "updated_at": created,
            "permissions": {"checks": "write", "contents": "write", "issues": "write"},
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
        }

    def _other_app(self, run: FakeCheckRun) -> dict[str, Any]:
        """The App behind another App's check run, such as a CI."""
        slug = run.app_slug
        return self._app_json() | {
            "id": self._run_app_id(run),
            "slug": slug,
            "node_id": f"A_{slug}",
            "client_id": f"Iv1.{slug}",
            "name": slug,
            "html_url": f"{WEB}/apps/{slug}",
        }

    def _status_json(self, repo: FakeRepo, status: FakeStatus) -> dict[str, Any]:
        created = _timestamp(status.created_at)
        return {
            "id": status.id,
            "node_id": f"SC_{status.id}",
            "state": status.state,
            "context": status.context,
            "description": status.description,
            "target_url": None,
            "avatar_url": None,
            "url": f"{self._api}/repos/{repo.full_name}/statuses/{status.sha}",
            "created_at": created,
            "updated_at": created,
        }

    def _comment_json(self, repo: FakeRepo, comment: FakeComment) -> dict[str, Any]:
        issue_url = f"{self._api}/repos/{repo.full_name}/issues/{comment.issue_number}"
        url = f"{self._api}/repos/{repo.full_name}/issues/comments/{comment.id}"
        user = self._user_json(comment.user)
        return {
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "url": url,
            "html_url": f"{WEB}/{repo.full_name}/issues/{comment.issue_number}"
            f"#issuecomment-{comment.id}",
            "body": comment.body,
            "user": user,
            "created_at": _timestamp(comment.created_at),
            "updated_at": _timestamp(comment.updated_at),
            "issue_url": issue_url,
            "author_association": _association(repo, comment.user),
            "performed_via_github_app": self._app_json() if comment.via_app else None,
            "reactions": _reaction_rollup(url, [c for _, c in comment.reactions]),
        }

    def _review_json(self, repo: FakeRepo, pull: FakePull, review: FakeReview) -> dict[str, Any]:
        pull_url = f"{self._api}/repos/{repo.full_name}/pulls/{pull.number}"
        html_url = f"{WEB}/{repo.full_name}/pull/{pull.number}#pullrequestreview-{review.id}"
        return {
            "id": review.id,
            "node_id": f"PRR_{review.id}",
            "user": self._user_json(review.user),
            "body": review.body,
            "state": review.state,
            "html_url": html_url,
            "pull_request_url": pull_url,
            "_links": {"html": {"href": html_url}, "pull_request": {"href": pull_url}},
            "submitted_at": _timestamp(review.submitted_at),
            "commit_id": review.commit_id,
            "author_association": _association(repo, review.user),
        }

    def _review_comment_json(
        self, repo: FakeRepo, pull: FakePull, review: FakeReview, comment: FakeReviewComment
    ) -> dict[str, Any]:
        pull_url = f"{self._api}/repos/{repo.full_name}/pulls/{pull.number}"
        url = f"{self._api}/repos/{repo.full_name}/pulls/comments/{comment.id}"
        html_url = f"{WEB}/{repo.full_name}/pull/{pull.number}#discussion_r{comment.id}"
        return {
            "url": url,
            "pull_request_review_id": review.id,
            "id": comment.id,
            "node_id": f"PRRC_{comment.id}",
            "diff_hunk": f"@@ -{comment.line},1 +{comment.line},1 @@",
            "path": comment.path,
            "position": 1,
            "original_position": 1,
            "commit_id": review.commit_id,
            "original_commit_id": review.commit_id,
            "user": self._user_json(review.user),
            "body": comment.body,
            "created_at": _timestamp(review.submitted_at),
            "updated_at": _timestamp(review.submitted_at),
            "html_url": html_url,
            "pull_request_url": pull_url,
            "author_association": _association(repo, review.user),
            "_links": {
                "self": {"href": url},
                "html": {"href": html_url},
                "pull_request": {"href": pull_url},
            },
            "reactions": _reaction_rollup(url, []),
            "side": "RIGHT",
            "line": comment.line,
            "original_line": comment.line,
            "subject_type": "line",
        }

    def _user_json(self, login: str) -> dict[str, Any]:
        if login == BOT_LOGIN:
            return self._bot_user()
        kind = "Bot" if login.endswith("[bot]") else "User"  # another App's bot account
        return _user(self._api, login, _user_id(login), kind=kind)

    def _issue_json(self, repo: FakeRepo, issue: FakeIssue) -> dict[str, Any]:
        api = f"{self._api}/repos/{repo.full_name}"
        url = f"{api}/issues/{issue.number}"
        pull = repo.pulls.get(issue.number)
        kind = "issues" if pull is None else "pull"
        comments = [
            c
            for c in self._comments.values()
            if (c.owner, c.repo, c.issue_number) == (repo.owner, repo.name, issue.number)
        ]
        data = {
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "url": url,
            "repository_url": api,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "timeline_url": f"{url}/timeline",
            "html_url": f"{WEB}/{repo.full_name}/{kind}/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "state_reason": "completed" if issue.state == "closed" and pull is None else None,
            "title": issue.title,
            "body": issue.body,
            "user": self._user_json(issue.user),
            "labels": [self._label_json(repo, name) for name in issue.labels],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "active_lock_reason": None,
            "comments": len(comments),
            "closed_at": _timestamp(issue.closed_at) if issue.closed_at else None,
            "created_at": _timestamp(issue.created_at),
            "updated_at": _timestamp(issue.updated_at or issue.created_at),
            "author_association": _association(repo, issue.user),
            "performed_via_github_app": None,
            "reactions": _reaction_rollup(url, []),
        }
        if pull is not None:
            html = f"{WEB}/{repo.full_name}/pull/{issue.number}"
            data["draft"] = pull.draft
            data["pull_request"] = {
                "url": f"{api}/pulls/{issue.number}",
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": _timestamp(pull.merged_at) if pull.merged_at else None,
            }
        return data

    def _pull_json(self, repo: FakeRepo, pull: FakePull, *, simple: bool = False) -> dict[str, Any]:
        """GitHub's pull-request object; `simple` is the shorter one that lists hold."""
        issue = repo.issues[pull.number]
        api = f"{self._api}/repos/{repo.full_name}"
        url = f"{api}/pulls/{pull.number}"
        html = f"{WEB}/{repo.full_name}/pull/{pull.number}"
        head_sha, base_sha = self._head_sha(repo, pull), self._base_sha(repo, pull)
        links = {
            "self": url,
            "html": html,
            "issue": f"{api}/issues/{pull.number}",
            "comments": f"{api}/issues/{pull.number}/comments",
            "review_comments": f"{url}/comments",
            "review_comment": f"{api}/pulls/comments{{/number}}",
            "commits": f"{url}/commits",
            "statuses": f"{api}/statuses/{head_sha}",
        }
        data = {
            "url": url,
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": links["issue"],
            "commits_url": links["commits"],
            "review_comments_url": links["review_comments"],
            "review_comment_url": links["review_comment"],
            "comments_url": links["comments"],
            "statuses_url": links["statuses"],
            "number": pull.number,
            "state": issue.state,
            "locked": False,
            "title": issue.title,
            "user": self._user_json(issue.user),
            "body": issue.body,
            "labels": [self._label_json(repo, name) for name in issue.labels],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": _timestamp(issue.created_at),
            "updated_at": _timestamp(issue.updated_at or issue.created_at),
            "closed_at": _timestamp(issue.closed_at) if issue.closed_at else None,
            "merged_at": _timestamp(pull.merged_at) if pull.merged_at else None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": self._pull_end(pull.head_repo, pull.head_ref, head_sha),
            "base": self._pull_end(repo.full_name, pull.base_ref, base_sha),
            "_links": {key: {"href": href} for key, href in links.items()},
            "author_association": _association(repo, issue.user),
            "auto_merge": None,
            "draft": pull.draft,
        }
        if simple:
            return data
        commits, additions, deletions, changed = self._diff_stats(repo, base_sha, head_sha)
        is_open = issue.state == "open"
        return data | {
            "merged": pull.merged_at is not None,
            "mergeable": True if is_open else None,
            "rebaseable": True if is_open else None,
            "mergeable_state": "clean" if is_open else "unknown",
            "merged_by": self._user_json(pull.merged_by) if pull.merged_by else None,
            "comments": self._issue_json(repo, issue)["comments"],
            "review_comments": 0,
            "maintainer_can_modify": pull.maintainer_can_modify,
            "commits": commits,
            "additions": additions,
            "deletions": deletions,
            "changed_files": changed,
        }

    def _pull_end(self, full_name: str, ref: str, sha: str) -> dict[str, Any]:
        """A pull request's head or base: the branch, its commit, and the repository."""
        owner, _, name = full_name.partition("/")
        repo = self._repos.get((owner, name))
        if repo is None:  # a fork that exists only as the head of a seeded pull request
            repo = FakeRepo(
                id=_stable_id(full_name),
                owner=owner,
                name=name,
                installation_id=0,
                default_branch=ref,
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
                commits=MemoryCommits(self._made_up_sha),
                fork=True,
            )
        repository = self._repository_json(repo)
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": repository["owner"],
            "repo": repository,
        }

    def _diff_stats(self, repo: FakeRepo, base: str, head: str) -> tuple[int, int, int, int]:
        """Commits, added and deleted lines, and changed files of head over base."""
        old, new = repo.commits.tree(base), repo.commits.tree(head)
        if old is None or new is None:  # a fork's head: its commits are not here
            return 1, 0, 0, 0
        changed = sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))
        additions = deletions = 0
        for path in changed:
            before = old.get(path, b"").decode(errors="replace").splitlines()
            after = new.get(path, b"").decode(errors="replace").splitlines()
            matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag != "equal":
                    deletions += i2 - i1
                    additions += j2 - j1
        return repo.commits.ahead(base, head), additions, deletions, len(changed)

    def _check_run_json(self, repo: FakeRepo, run: FakeCheckRun) -> dict[str, Any]:
        api = f"{self._api}/repos/{repo.full_name}"
        return {
            "id": run.id,
            "node_id": f"CR_{run.id}",
            "head_sha": run.head_sha,
            "external_id": run.external_id or "",
            "url": f"{api}/check-runs/{run.id}",
            "html_url": f"{WEB}/{repo.full_name}/runs/{run.id}",
            "details_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": _timestamp(run.started_at) if run.started_at else None,
            "completed_at": _timestamp(run.completed_at) if run.completed_at else None,
            "output": run.output
            | {
                "annotations_count": len(run.annotations),
                "annotations_url": f"{api}/check-runs/{run.id}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": _stable_id(f"{repo.full_name}:{run.head_sha}")},
            "app": self._app_json() if run.app_slug == APP_SLUG else self._other_app(run),
            "pull_requests": [
                self._pull_minimal(repo, pull)
                for pull in repo.pulls.values()
                if repo.issues[pull.number].state == "open"
                and pull.head_repo == repo.full_name
                and self._head_sha(repo, pull) == run.head_sha
            ],
        }

    def _diff_entry_json(
        self, repo: FakeRepo, sha: str, path: str, old: bytes | None, new: bytes | None
    ) -> dict[str, Any]:
        before = (old or b"").decode(errors="replace").splitlines()
        after = (new or b"").decode(errors="replace").splitlines()
        patch = "\n".join(difflib.unified_diff(before, after, lineterm="", n=3))
        additions = sum(1 for line in patch.splitlines() if line[:1] == "+" and line[:3] != "+++")
        deletions = sum(1 for line in patch.splitlines() if line[:1] == "-" and line[:3] != "---")
        status = "added" if old is None else "removed" if new is None else "modified"
        quoted = quote(path)
        return {
            "sha": _blob_sha(new if new is not None else old or b""),
            "filename": path,
            "status": status,
            "additions": additions,
            "deletions": deletions,
            "changes": additions + deletions,
            "blob_url": f"{WEB}/{repo.full_name}/blob/{sha}/{quoted}",
            "raw_url": f"{WEB}/{repo.full_name}/raw/{sha}/{quoted}",
            "contents_url": f"{self._api}/repos/{repo.full_name}/contents/{quoted}?ref={sha}",
            "patch": patch,
        }

    def _pull_minimal(self, repo: FakeRepo, pull: FakePull) -> dict[str, Any]:
        api = f"{self._api}/repos/{repo.full_name}"
        end = {"id": repo.id, "url": api, "name": repo.name}
        return {
            "id": pull.id,
            "number": pull.number,
            "url": f"{api}/pulls/{pull.number}",
            "head": {"ref": pull.head_ref, "sha": self._head_sha(repo, pull), "repo": end},
            "base": {"ref": pull.base_ref, "sha": self._base_sha(repo, pull), "repo": end},
        }

    def _label_json(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        return {
            "id": repo.labels[name],
            "node_id": f"LA_{repo.labels[name]}",
            "url": f"{self._api}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": name,
            "description": "",
            "color": "ededed",
            "default": False,
        }

    def _ref_json(self, repo: FakeRepo, branch: str) -> dict[str, Any]:
        base = f"{self._api}/repos/{repo.full_name}/git"
        sha = repo.commits.heads()[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_{_stable_id(repo.full_name + branch)}",
            "url": f"{base}/refs/heads/{quote(branch)}",
            "object": {"type": "commit", "sha": sha, "url": f"{base}/commits/{sha}"},
        }

    def _entry_json(
        self, repo: FakeRepo, ref: str, path: str, *, kind: str, sha: str, size: int
    ) -> dict[str, Any]:
        api = f"{self._api}/repos/{repo.full_name}"
        web_kind = "blob" if kind == "file" else "tree"
        git_url = f"{api}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}"
        html_url = f"{WEB}/{repo.full_name}/{web_kind}/{quote(ref)}/{quote(path)}"
        url = f"{api}/contents/{quote(path)}?{urlencode({'ref': ref})}"
        download = f"https://raw.githubusercontent.com/{repo.full_name}/{quote(ref)}/{quote(path)}"
        return {
            "type": kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": download if kind == "file" else None,
            "_links": {"self": url, "git": git_url, "html": html_url},
        }

    def _file_json(self, repo: FakeRepo, ref: str, path: str, content: bytes) -> dict[str, Any]:
        entry = self._entry_json(
            repo, ref, path, kind="file", sha=_blob_sha(content), size=len(content)
        )
        if len(content) > INLINE_CONTENT_LIMIT:
            # "Between 1-100 MB: ... the content field will be an empty string and the
            # encoding field will be "none"" (docs.github.com/rest/repos/contents).
            return entry | {"content": "", "encoding": "none"}
        encoded = base64.b64encode(content).decode()
        # GitHub wraps the base64 text at 60 characters.
        lines = [encoded[i : i + 60] for i in range(0, len(encoded), 60)]
        return entry | {"content": "\n".join(lines) + "\n", "encoding": "base64"}

    def _directory(
        self, repo: FakeRepo, ref: str, path: str, tree: Mapping[str, bytes]
    ) -> list[dict[str, Any]]:
        prefix = f"{path}/" if path else ""
        children: dict[str, dict[str, Any]] = {}
        for file_path, content in sorted(tree.items()):
            if not file_path.startswith(prefix):
                continue
            head, _, rest = file_path[len(prefix) :].partition("/")
            child = prefix + head
            if rest:
                sha = hashlib.sha1(child.encode()).hexdigest()  # noqa: S324 - a git object name
                children.setdefault(
                    child, self._entry_json(repo, ref, child, kind="dir", sha=sha, size=0)
                )
            else:
                children[child] = self._entry_json(
                    repo, ref, child, kind="file", sha=_blob_sha(content), size=len(content)
                )
        return list(children.values())

    def _repository_json(self, repo: FakeRepo) -> dict[str, Any]:
        full = repo.full_name
        api = f"{self._api}/repos/{full}"
        html = f"{WEB}/{full}"
        created = _timestamp(repo.created_at)
        open_issues = sum(issue.state == "open" for issue in repo.issues.values())
        default_head = repo.commits.heads().get(repo.default_branch, "")
        size = sum(len(content) for content in (repo.commits.tree(default_head) or {}).values())
        templates = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": full,
            "owner": _user(self._api, repo.owner, _user_id(repo.owner), kind="Organization"),
            "private": True,
            "visibility": "private",
            "html_url": html,
            "description": None,
            "fork": repo.fork,
            "url": api,
            **{key: api + suffix for key, suffix in templates.items()},
            "git_url": f"git://github.com/{full}.git",
            "ssh_url": f"git@github.com:{full}.git",
            "clone_url": repo.commits.clone_url or f"{html}.git",
            "svn_url": html,
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "subscribers_count": 0,
            "network_count": 0,
            "size": size,
            "default_branch": repo.default_branch,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "pushed_at": created,
            "created_at": created,
            "updated_at": created,
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": True,
                "triage": True,
                "pull": True,
            },
            "allow_forking": False,
            "web_commit_signoff_required": False,
            "license": None,
        }


def _user(api: str, login: str, user_id: int, *, kind: str = "User") -> dict[str, Any]:
    """GitHub's simple-user object."""
    url = f"{api}/users/{quote(login, safe='')}"
    html_url = f"{WEB}/apps/{login.removesuffix('[bot]')}" if kind == "Bot" else f"{WEB}/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": html_url,
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def _permission_flags(role: str) -> dict[str, bool]:
    order = ["read", "triage", "write", "maintain", "admin"]
    base = role if role in order else LEGACY_PERMISSION.get(role, "read")
    rank = order.index(base) if base in order else -1
    return {
        "pull": rank >= 0,
        "triage": rank >= 1,
        "push": rank >= 2,
        "maintain": rank >= 3,
        "admin": rank >= 4,
    }


def _association(repo: FakeRepo, login: str) -> str:
    if login == repo.owner:
        return "OWNER"
    return "COLLABORATOR" if login in repo.collaborators else "NONE"


def _reaction_rollup(url: str, contents: list[str]) -> dict[str, Any]:
    return {"url": f"{url}/reactions", "total_count": len(contents)} | {
        name: contents.count(name) for name in REACTIONS
    }


def _paged(
    request: web.Request, url: str, items: list[Any], wrap: Callable[[list[Any]], Any]
) -> web.Response:
    """One page of `items`, as `per_page` and `page` ask, with GitHub's Link header."""
    # https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
    try:
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError as exc:
        raise Answer(422, "Validation Failed") from exc
    response = web.json_response(wrap(items[(page - 1) * per_page : page * per_page]))
    last = max(1, -(-len(items) // per_page))
    if last > 1:
        others = {k: v for k, v in request.query.items() if k not in ("per_page", "page")}
        response.headers["Link"] = _link_header(url, others, per_page, page, last)
    return response


def _apply_check_run(run: FakeCheckRun, payload: Any, *, now: datetime) -> None:
    """Take a create or update request's fields, checked as GitHub checks them."""
    if not isinstance(payload, dict):
        raise Answer(400, "Problems parsing JSON")
    status, conclusion = payload.get("status"), payload.get("conclusion")
    if status is not None and status not in CHECK_STATUSES:
        raise Answer(422, "Validation Failed", errors=[_invalid("CheckRun", "status")])
    if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
        raise Answer(422, "Validation Failed", errors=[_invalid("CheckRun", "conclusion")])
    if conclusion is not None:
        status = "completed"  # "Providing conclusion will automatically set status"
    elif status == "completed":
        missing = {"resource": "CheckRun", "code": "missing_field", "field": "conclusion"}
        raise Answer(422, "Validation Failed", errors=[missing])
    output = payload.get("output") or {}
    for key in ("summary", "text"):
        if len(output.get(key) or "") > OUTPUT_LIMIT:
            raise Answer(422, "Validation Failed", errors=[_invalid("CheckRun", f"output.{key}")])
    annotations = [_checked_annotation(a) for a in output.get("annotations") or []]
    if len(annotations) > ANNOTATIONS_PER_REQUEST:
        raise Answer(422, "Validation Failed", errors=[_invalid("CheckRun", "annotations")])
    if status is not None:
        run.status, run.conclusion = status, conclusion
        run.completed_at = now if status == "completed" else None
    run.name = payload.get("name", run.name)
    run.started_at = _parsed_time(payload.get("started_at")) or run.started_at
    run.completed_at = _parsed_time(payload.get("completed_at")) or run.completed_at
    run.external_id = payload.get("external_id", run.external_id)
    run.details_url = payload.get("details_url", run.details_url)
    run.output |= {key: output[key] for key in ("title", "summary", "text") if key in output}
    run.annotations.extend(annotations)  # "annotations are appended to the list"


def _checked_annotation(annotation: Any) -> dict[str, Any]:
    """An annotation as GitHub takes it: required fields, a level, columns on one line only."""
    invalid = Answer(422, "Validation Failed", errors=[_invalid("CheckRun", "annotations")])
    if not isinstance(annotation, dict) or any(k not in annotation for k in ANNOTATION_FIELDS):
        raise invalid
    if annotation["annotation_level"] not in ANNOTATION_LEVELS:
        raise invalid
    columns = "start_column" in annotation or "end_column" in annotation
    if columns and annotation["start_line"] != annotation["end_line"]:
        raise invalid
    return dict(annotation)


def _parsed_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise Answer(422, "Validation Failed", errors=[_invalid("CheckRun", "time")]) from exc


def _link_header(url: str, query: Mapping[str, str], per_page: int, page: int, last: int) -> str:
    def link(n: int, rel: str) -> str:
        return f'<{url}?{urlencode({**query, "per_page": per_page, "page": n})}>; rel="{rel}"'

    links = []
    if page > 1:
        links += [link(page - 1, "prev"), link(1, "first")]
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    return ", ".join(links)


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"message": message, "documentation_url": DOCS, "status": str(status)}


def _invalid(resource: str, field_name: str) -> dict[str, str]:
    return {"resource": resource, "code": "invalid", "field": field_name}


def _custom(resource: str, message: str) -> dict[str, str]:
    return {"resource": resource, "code": "custom", "message": message}


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise Answer(400, "Problems parsing JSON") from exc


def _string_field(payload: Any, name: str, *, resource: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str):
        missing = {"resource": resource, "code": "missing_field", "field": name}
        raise Answer(422, "Validation Failed", errors=[missing])
    return value


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()  # noqa: S324 - git's own


def _stable_id(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def _user_id(login: str) -> int:
    return 1_000_000 + _stable_id(login) % 100_000_000


def _git(
    *args: str, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run git away from the machine's git configuration; a failure says what git said."""
    env = os.environ | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    result = subprocess.run(["git", *args], input=stdin, capture_output=True, env=env, check=False)
    if check and result.returncode:
        command = " ".join(args)
        raise RuntimeError(f"git {command} failed: {result.stderr.decode(errors='replace')}")
    return result


def _quoted_path(path: str) -> bytes:
    """A path as git fast-import reads it: C-style quoted, so any name survives."""
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'.encode()
