"""What the local stand-in forge of `bosun demo` keeps beside git: issues, PRs, comments, runs."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.clock import Clock
from bot.demo.forge_git import BareRepo

# https://docs.github.com/en/rest/reactions/reactions#about-reactions
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
ROLES = ("read", "triage", "write", "maintain", "admin")


@dataclass
class Comment:
    id: int
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    via_app: bool
    reactions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Pull:
    """The pull-request half of an issue; the shas are the tips last seen in git."""

    head: str
    base: str
    head_sha: str
    base_sha: str
    draft: bool = False
    maintainer_can_modify: bool = False


@dataclass
class Issue:
    """An issue, or a pull request when `pull` is set: GitHub numbers both in one sequence."""

    id: int
    number: int
    title: str
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    pull: Pull | None = None


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None
    details_url: str | None
    external_id: str | None
    output: dict[str, str | None] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ForgeRepo:
    id: int
    owner: str
    name: str
    git: BareRepo
    default_branch: str
    created_at: datetime
    collaborators: dict[str, str] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def clone_url(self) -> str:
        return self.git.path.as_uri()

    def next_number(self) -> int:
        return max(self.issues, default=0) + 1

    def open_pull_for(self, head: str) -> Issue | None:
        return next(
            (
                i
                for i in self.issues.values()
                if i.pull and i.pull.head == head and i.state == "open"
            ),
            None,
        )

    def comments_on(self, number: int) -> list[Comment]:
        return sorted(
            (c for c in self.comments.values() if c.issue_number == number), key=lambda c: c.id
        )


class ForgeState:
    """Every repository of the forge, and the changes that keep its records consistent."""

    def __init__(self, *, clock: Clock) -> None:
        self.clock = clock
        self.repos: dict[tuple[str, str], ForgeRepo] = {}
        self._ids = itertools.count(1001)

    def next_id(self) -> int:
        return next(self._ids)

    def repo(self, owner: str, name: str) -> ForgeRepo:
        try:
            return self.repos[owner, name]
        except KeyError:
            raise KeyError(f"the forge has no repository {owner}/{name}") from None

    def issue(self, owner: str, name: str, number: int) -> tuple[ForgeRepo, Issue]:
        repo = self.repo(owner, name)
        if number not in repo.issues:
            raise KeyError(f"{repo.full_name} has no issue or pull request #{number}")
        return repo, repo.issues[number]

    def new_issue(
        self, repo: ForgeRepo, *, title: str, body: str, user: str, pull: Pull | None = None
    ) -> Issue:
        """An issue, or a pull request with `pull`, numbered next in the repository."""
        now = self.clock.now()
        issue = Issue(self.next_id(), repo.next_number(), title, body, user, now, now, pull=pull)
        repo.issues[issue.number] = issue
        return issue

    def new_comment(
        self, repo: ForgeRepo, issue: Issue, body: str, *, user: str, via_app: bool
    ) -> Comment:
        now = self.clock.now()
        comment = Comment(self.next_id(), issue.number, body, user, now, now, via_app)
        repo.comments[comment.id] = comment
        issue.updated_at = now
        return comment

    def label(self, repo: ForgeRepo, issue: Issue, name: str) -> None:
        self.known_label(repo, name)
        if name not in issue.labels:
            issue.labels.append(name)
            issue.updated_at = self.clock.now()

    def unlabel(self, issue: Issue, name: str) -> bool:
        """Take a label off; False when it was not on."""
        if name not in issue.labels:
            return False
        issue.labels.remove(name)
        issue.updated_at = self.clock.now()
        return True

    def known_label(self, repo: ForgeRepo, name: str) -> None:
        repo.labels.setdefault(name, self.next_id())

    def set_state(self, issue: Issue, state: str) -> None:
        if state != issue.state:
            now = self.clock.now()
            issue.state, issue.updated_at = state, now
            issue.closed_at = now if state == "closed" else None

    def close_pulls_from(self, repo: ForgeRepo, branch: str) -> None:
        """GitHub closes the open pull requests whose head branch is deleted."""
        for issue in repo.issues.values():
            if issue.pull and issue.pull.head == branch and issue.state == "open":
                self.set_state(issue, "closed")


def refresh(repo: ForgeRepo, tips: Mapping[str, str]) -> None:
    """Open pull requests follow their branches; a deleted branch leaves its last tip."""
    for issue in repo.issues.values():
        if issue.pull is not None and issue.state == "open":
            issue.pull.head_sha = tips.get(issue.pull.head, issue.pull.head_sha)
            issue.pull.base_sha = tips.get(issue.pull.base, issue.pull.base_sha)


def pulls_in(repo: ForgeRepo, state: str, *, newest_first: bool = True) -> list[Issue]:
    """Pull requests in `state` (open, closed or all), by number."""
    chosen = [i for i in repo.issues.values() if i.pull and state in ("all", i.state)]
    return sorted(chosen, key=lambda i: -i.number if newest_first else i.number)
