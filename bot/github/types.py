"""What Bosun reads of GitHub's answers, as typed values; everything else stays on GitHub.

Each `from_json` takes GitHub's JSON as the REST description gives it and keeps the fields
Bosun acts on. A malformed answer raises `GitHubError` (status 200), never a KeyError deep
in a handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from bot.core.errors import GitHubError, PayloadError

T = TypeVar("T")


class CheckStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class CheckConclusion(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    NEUTRAL = "neutral"


class PullState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class MergeMethod(StrEnum):
    MERGE = "merge"
    SQUASH = "squash"
    REBASE = "rebase"


class AnnotationLevel(StrEnum):
    NOTICE = "notice"
    WARNING = "warning"
    FAILURE = "failure"


@dataclass(frozen=True)
class Repo:
    """A repository as one installation of the App sees it."""

    installation_id: int
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Repo:
        """The repository a webhook payload is about, with the installation that sent it."""
        try:
            repository = payload["repository"]
            return cls(
                installation_id=int(payload["installation"]["id"]),
                owner=str(repository["owner"]["login"]),
                name=str(repository["name"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PayloadError(f"payload names no repository and installation: {exc!r}") from exc


@dataclass(frozen=True)
class AppIdentity:
    """The App itself: its id, and the slug its bot account is named after."""

    id: int
    slug: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass(frozen=True, kw_only=True)
class User:
    login: str
    kind: str  # User, Bot, Organization

    @property
    def is_bot(self) -> bool:
        return self.kind == "Bot" or self.login.endswith("[bot]")

    @classmethod
    def from_json(cls, data: Any) -> User:
        data = data if isinstance(data, Mapping) else {}
        return cls(login=str(data.get("login") or ""), kind=str(data.get("type") or "User"))


@dataclass(frozen=True, kw_only=True)
class Repository:
    full_name: str
    default_branch: str
    clone_url: str

    @classmethod
    def from_json(cls, data: Any) -> Repository:
        return _parsed(
            data,
            lambda d: cls(
                full_name=str(d["full_name"]),
                default_branch=str(d["default_branch"]),
                clone_url=str(d["clone_url"]),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Issue:
    """An issue; GitHub counts a pull request as one too (`is_pull_request`)."""

    number: int
    title: str
    body: str
    state: str
    labels: tuple[str, ...]
    author: User
    is_pull_request: bool

    @classmethod
    def from_json(cls, data: Any) -> Issue:
        def parse(d: Mapping[str, Any]) -> Issue:
            labels = tuple(
                str(label.get("name") if isinstance(label, Mapping) else label)
                for label in d.get("labels") or []
            )
            return cls(
                number=int(d["number"]),
                title=str(d.get("title") or ""),
                body=str(d.get("body") or ""),
                state=str(d.get("state") or "open"),
                labels=labels,
                author=User.from_json(d.get("user")),
                is_pull_request="pull_request" in d,
            )

        return _parsed(data, parse)


@dataclass(frozen=True, kw_only=True)
class PullRequest:
    number: int
    state: str
    merged: bool
    draft: bool
    head_ref: str
    head_sha: str
    head_repo: str | None  # the full name of the repository the head lives in (a fork's)
    base_ref: str
    html_url: str

    @property
    def open(self) -> bool:
        return self.state == "open" and not self.merged

    @classmethod
    def from_json(cls, data: Any) -> PullRequest:
        def parse(d: Mapping[str, Any]) -> PullRequest:
            head, base = d["head"], d["base"]
            return cls(
                number=int(d["number"]),
                state=str(d["state"]),
                merged=bool(d.get("merged") or d.get("merged_at")),
                draft=bool(d.get("draft")),
                head_ref=str(head["ref"]),
                head_sha=str(head["sha"]),
                head_repo=(head.get("repo") or {}).get("full_name"),
                base_ref=str(base["ref"]),
                html_url=str(d.get("html_url") or ""),
            )

        return _parsed(data, parse)


@dataclass(frozen=True, kw_only=True)
class Comment:
    id: int
    body: str
    author: User

    @classmethod
    def from_json(cls, data: Any) -> Comment:
        return _parsed(
            data,
            lambda d: cls(
                id=int(d["id"]), body=str(d.get("body") or ""), author=User.from_json(d.get("user"))
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Review:
    id: int
    author: User
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    commit_id: str | None
    body: str

    @classmethod
    def from_json(cls, data: Any) -> Review:
        return _parsed(
            data,
            lambda d: cls(
                id=int(d["id"]),
                author=User.from_json(d.get("user")),
                state=str(d.get("state") or "").upper(),
                commit_id=d.get("commit_id"),
                body=str(d.get("body") or ""),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class ReviewComment:
    path: str
    line: int | None
    body: str

    @classmethod
    def from_json(cls, data: Any) -> ReviewComment:
        return _parsed(
            data,
            lambda d: cls(
                path=str(d.get("path") or ""),
                line=d.get("line") or d.get("original_line"),
                body=str(d.get("body") or ""),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class CheckRun:
    id: int
    name: str
    status: str
    conclusion: str | None
    app_id: int | None
    annotations_count: int

    @classmethod
    def from_json(cls, data: Any) -> CheckRun:
        return _parsed(
            data,
            lambda d: cls(
                id=int(d["id"]),
                name=str(d["name"]),
                status=str(d["status"]),
                conclusion=d.get("conclusion"),
                app_id=(d.get("app") or {}).get("id"),
                annotations_count=int((d.get("output") or {}).get("annotations_count") or 0),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class CombinedStatus:
    """Commit statuses rolled into one: with none at all GitHub says `pending`, count 0."""

    state: str
    total_count: int

    @classmethod
    def from_json(cls, data: Any) -> CombinedStatus:
        return _parsed(
            data, lambda d: cls(state=str(d["state"]), total_count=int(d["total_count"]))
        )


@dataclass(frozen=True, kw_only=True)
class Merge:
    sha: str
    merged: bool

    @classmethod
    def from_json(cls, data: Any) -> Merge:
        return _parsed(data, lambda d: cls(sha=str(d["sha"]), merged=bool(d["merged"])))


@dataclass(frozen=True, kw_only=True)
class Annotation:
    """A remark on lines of a file, shown in the pull request's diff; lines and columns from 1."""

    path: str
    start_line: int
    end_line: int
    message: str
    title: str | None = None
    start_column: int | None = None
    end_column: int | None = None
    level: AnnotationLevel = AnnotationLevel.FAILURE

    def as_json(self) -> dict[str, Any]:
        # Columns only count on one line: "Omit this parameter if start_line and end_line
        # have different values" (https://docs.github.com/en/rest/checks/runs).
        same_line = self.start_line == self.end_line
        return given(
            path=self.path,
            start_line=self.start_line,
            end_line=self.end_line,
            start_column=self.start_column if same_line else None,
            end_column=self.end_column if same_line else None,
            annotation_level=AnnotationLevel(self.level).value,
            message=self.message,
            title=self.title,
        )


def given(**fields: Any) -> dict[str, Any]:
    """The fields that are not None: what a request sends."""
    return {key: value for key, value in fields.items() if value is not None}


def _parsed(data: Any, parse: Callable[[Mapping[str, Any]], T]) -> T:
    if not isinstance(data, Mapping):
        raise GitHubError(f"expected a JSON object, got {type(data).__name__}", status_code=200)
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise GitHubError(f"GitHub's answer lacks {exc}", status_code=200) from exc
