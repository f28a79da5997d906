"""Every call Bosun makes to GitHub: App tokens, conditional reads, mapped errors, retries."""

from __future__ import annotations

import asyncio
import base64
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import aiohttp
import gidgethub
import gidgethub.aiohttp
import jwt
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.core.clock import Clock
from bot.core.errors import (
    GitHubError,
    GitHubRateLimited,
    GitHubTransientError,
    PayloadError,
    SettingsError,
)
from bot.settings import Secret

log = structlog.get_logger("bosun.github")

T = TypeVar("T")
UrlVars = Mapping[str, str | int | None]

# https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
JWT_BACKDATE = timedelta(seconds=60)  # "60 seconds in the past to allow for clock drift"
JWT_LIFETIME = timedelta(minutes=9)  # GitHub refuses an expiry more than 10 minutes ahead
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
SECONDARY_LIMIT_WAIT = 60.0  # "wait for at least one minute before retrying"
MAX_RETRY_AFTER = 60.0  # a longer wait fails fast instead of holding a worker
MAX_BACKOFF = 30.0
DEFAULT_TIMEOUT = 15.0
PER_PAGE = 100
NETWORK_FAILURE = 0  # the status_code of a request that got no answer at all
ROLES = frozenset({"admin", "maintain", "write", "triage", "read"})
# https://docs.github.com/en/rest/checks/runs#create-a-check-run ("Maximum length: 65535")
OUTPUT_LIMIT = 65535
TRUNCATED = "\n\n*(truncated)*"
FENCE = "```"
# https://docs.github.com/en/rest/checks/runs#update-a-check-run: "The Checks API limits the
# number of annotations to a maximum of 50 per API request"; later ones are appended.
ANNOTATIONS_PER_REQUEST = 50

# Path parameters go through url_vars, which percent-encodes a slash in a branch name or a
# file path as %2F: that is how GitHub's description expects them (`x-multi-segment`).
APP = "/app"
ACCESS_TOKENS = "/app/installations/{installation_id}/access_tokens"
REPOSITORY = "/repos/{owner}/{repo}"
PERMISSION = "/repos/{owner}/{repo}/collaborators/{username}/permission"
BRANCH_REF = "/repos/{owner}/{repo}/git/ref/{ref}"
REF = "/repos/{owner}/{repo}/git/refs/{ref}"
CONTENTS = "/repos/{owner}/{repo}/contents/{path}{?ref}"
COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
COMMENT_REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
LABEL = "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"
ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}"
PULLS = "/repos/{owner}/{repo}/pulls{?state,head,per_page}"
PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
PULL_FILES = "/repos/{owner}/{repo}/pulls/{pull_number}/files{?per_page}"
REVIEWS = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews{?per_page}"
REVIEW_COMMENTS = (
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments{?per_page}"
)
CHECK_RUNS = "/repos/{owner}/{repo}/check-runs"
CHECK_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
CHECK_RUNS_FOR_REF = (
    "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,app_id,per_page}"
)
COMBINED_STATUS = "/repos/{owner}/{repo}/commits/{ref}/status{?per_page}"
MERGE = "/repos/{owner}/{repo}/pulls/{pull_number}/merge"


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


class FileTooLarge(GitHubError):
    """A file GitHub will not send inline (over 1 MB); `size` is its length in bytes."""

    def __init__(self, message: str, *, path: str, size: int) -> None:
        super().__init__(message, status_code=200)
        self.path = path
        self.size = size


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
        return _given(
            path=self.path,
            start_line=self.start_line,
            end_line=self.end_line,
            start_column=self.start_column if same_line else None,
            end_column=self.end_column if same_line else None,
            annotation_level=AnnotationLevel(self.level).value,
            message=self.message,
            title=self.title,
        )


@dataclass(frozen=True)
class AppIdentity:
    """The App itself: its id, and the slug its bot account is named after."""

    id: int
    slug: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass(frozen=True)
class Repo:
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


class EtagCache(MutableMapping[str, Any]):
    """gidgethub's conditional-request cache, keeping the `maxsize` most recently used URLs."""

    def __init__(self, maxsize: int = 2048) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[str, Any] = OrderedDict()

    def __getitem__(self, key: str) -> Any:
        self._entries.move_to_end(key)
        return self._entries[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)

    def __delitem__(self, key: str) -> None:
        del self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class _GitHubAPI(gidgethub.aiohttp.GitHubAPI):
    """gidgethub over the shared session, with a timeout on every request and the clock's sleep."""

    def __init__(
        self, session: aiohttp.ClientSession, *, clock: Clock, timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(session, **kwargs)
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        async with self._session.request(
            method, url, headers=headers, data=body, timeout=self._timeout
        ) as response:
            return response.status, response.headers, await response.read()

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


@dataclass(frozen=True)
class _Token:
    value: Secret
    expires_at: datetime


class GitHubClient:
    """GitHub as the App's installations see it. Without App credentials it asks anonymously."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        base_url: str,
        app_id: str | None,
        private_key: Secret | None,
        clock: Clock,
        requester: str = "bosun",
        max_attempts: int = 4,
        etag_cache: MutableMapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if (app_id is None) != (private_key is None):
            raise ValueError("app_id and private_key go together")
        self._api = _GitHubAPI(
            session,
            clock=clock,
            timeout=timeout,
            requester=requester,
            base_url=base_url,
            cache=EtagCache() if etag_cache is None else etag_cache,
        )
        self._app_id = app_id
        self._private_key = private_key
        self._clock = clock
        self._max_attempts = max_attempts
        self._tokens: dict[int, _Token] = {}
        self._token_locks: dict[int, asyncio.Lock] = {}
        self._identity: AppIdentity | None = None
        self._identity_lock = asyncio.Lock()

    # The App

    async def app_identity(self) -> AppIdentity | None:
        """The App's id and slug, asked of GitHub once; None without App credentials."""
        if self._app_id is None:
            return None
        async with self._identity_lock:
            if self._identity is None:

                async def attempt() -> Any:
                    with self._translated():
                        return await self._api.getitem(APP, jwt=self._app_jwt())

                data = _object(await self._retrying(attempt))
                self._identity = AppIdentity(id=int(data["id"]), slug=str(data["slug"]))
            return self._identity

    async def installation_token(self, *, installation_id: int) -> str:
        """A token for git over HTTPS, valid for at least five more minutes.

        Ask right before each clone or push: a token is cached until five minutes before it
        expires, so one kept for longer may be refused.
        """

        async def attempt() -> Secret | None:
            return await self._installation_token(installation_id)

        token = await self._retrying(attempt)
        if token is None:
            raise SettingsError("no GitHub App is configured, so there is no installation token")
        return token.reveal()

    # Reads

    async def permission_of(self, *, repo: Repo, username: str) -> str:
        """admin, maintain, write, triage, read, or none for someone who is no collaborator."""
        data = await self._get_or_none(repo, PERMISSION, username=username)
        if data is None:
            return "none"
        role = _object(data).get("role_name")
        # A custom repository role has its own name; `permission` gives its base role.
        return role if role in ROLES else str(data.get("permission") or "none")

    async def get_repository(self, *, repo: Repo) -> dict[str, Any]:
        return dict(_object(await self._get(repo, REPOSITORY)))

    async def get_branch_sha(self, *, repo: Repo, branch: str) -> str:
        data = _object(await self._get(repo, BRANCH_REF, ref=f"heads/{branch}"))
        return str(data["object"]["sha"])

    async def get_file(self, *, repo: Repo, path: str, ref: str | None = None) -> bytes | None:
        """The file's bytes at `ref` (default branch if None), or None if there is no such path."""
        data = await self._get_or_none(repo, CONTENTS, path=path, ref=ref)
        if data is None:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise GitHubError(f"{repo.full_name}:{path} is not a file", status_code=200)
        if data.get("encoding") != "base64":
            # Files over 1 MB come back without content:
            # https://docs.github.com/en/rest/repos/contents#get-repository-content
            raise FileTooLarge(
                f"{repo.full_name}:{path} is too large to read",
                path=path,
                size=int(data.get("size") or 0),
            )
        return base64.b64decode(data["content"])

    async def list_directory(self, *, repo: Repo, path: str, ref: str | None = None) -> list[str]:
        """Paths of the files directly in a directory; [] if there is no such directory."""
        data = await self._get_or_none(repo, CONTENTS, path=path, ref=ref)
        if data is None:
            return []
        if not isinstance(data, list):
            raise GitHubError(f"{repo.full_name}:{path} is not a directory", status_code=200)
        return [str(entry["path"]) for entry in data if entry.get("type") == "file"]

    async def list_comments(self, *, repo: Repo, issue_number: int) -> list[dict[str, Any]]:
        url_vars = self._vars(repo, issue_number=issue_number, per_page=PER_PAGE)

        async def every_page(token: str | None) -> list[dict[str, Any]]:
            pages = self._api.getiter(COMMENTS, url_vars, oauth_token=token)
            return [_object(comment) async for comment in pages]

        return await self._as_installation(repo, every_page)

    async def find_comment(
        self, *, repo: Repo, issue_number: int, marker: str
    ) -> dict[str, Any] | None:
        """The first comment by the App's own bot account whose body contains `marker`.

        Anyone may quote the hidden marker; a comment by a person or by another App is never
        taken for Bosun's own, so it is never the one Bosun edits.
        """
        if not marker:
            raise ValueError("a marker must not be empty")
        identity = await self.app_identity()
        url_vars = self._vars(repo, issue_number=issue_number, per_page=PER_PAGE)

        async def first(token: str | None) -> dict[str, Any] | None:
            async with aclosing(self._api.getiter(COMMENTS, url_vars, oauth_token=token)) as pages:
                async for item in pages:
                    comment = _object(item)
                    if marker in (comment.get("body") or "") and _by_app(comment, identity):
                        return comment
            return None

        return await self._as_installation(repo, first)

    async def get_issue(self, *, repo: Repo, number: int) -> dict[str, Any]:
        """An issue; a pull request is one too, and then carries a `pull_request` key."""
        return dict(_object(await self._get(repo, ISSUE, issue_number=number)))

    async def get_pull(self, *, repo: Repo, number: int) -> dict[str, Any]:
        return dict(_object(await self._get(repo, PULL, pull_number=number)))

    async def list_pull_files(self, *, repo: Repo, number: int) -> list[str]:
        """Every path the pull request changes; a renamed file counts by its old name too.

        GitHub lists at most 3000 files of a pull request:
        https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
        """
        url_vars = self._vars(repo, pull_number=number, per_page=PER_PAGE)

        async def every_page(token: str | None) -> list[str]:
            paths: list[str] = []
            async for item in self._api.getiter(PULL_FILES, url_vars, oauth_token=token):
                entry = _object(item)
                paths.append(str(entry["filename"]))
                if entry.get("previous_filename"):
                    paths.append(str(entry["previous_filename"]))
            return paths

        return await self._as_installation(repo, every_page)

    async def list_reviews(self, *, repo: Repo, number: int) -> list[dict[str, Any]]:
        """Every review of the pull request, oldest first, dismissed ones included."""
        return await self._every_item(repo, REVIEWS, pull_number=number)

    async def list_review_comments(
        self, *, repo: Repo, number: int, review_id: int
    ) -> list[dict[str, Any]]:
        """The inline comments one review made on the pull request's diff."""
        return await self._every_item(
            repo, REVIEW_COMMENTS, pull_number=number, review_id=review_id
        )

    async def find_open_pull(self, *, repo: Repo, head_branch: str) -> dict[str, Any] | None:
        """The open pull request from `head_branch` of this repository, if there is one."""
        data = await self._get(
            repo, PULLS, state="open", head=f"{repo.owner}:{head_branch}", per_page=PER_PAGE
        )
        pulls = [_object(pull) for pull in _array(data)]
        return next((p for p in pulls if (p.get("head") or {}).get("ref") == head_branch), None)

    async def find_check_run(
        self, *, repo: Repo, head_sha: str, name: str
    ) -> dict[str, Any] | None:
        """The App's latest check run called `name` on the commit, if there is one."""
        identity = await self.app_identity()
        data = _object(
            await self._get(
                repo,
                CHECK_RUNS_FOR_REF,
                ref=head_sha,
                check_name=name,
                filter="latest",
                app_id=identity.id if identity else None,
                per_page=PER_PAGE,
            )
        )
        runs = [_object(run) for run in _array(data.get("check_runs"))]
        return next((run for run in runs if _is_check_run(run, name, identity)), None)

    async def list_check_runs(self, *, repo: Repo, ref: str) -> list[dict[str, Any]]:
        """Every App's check runs on the commit, the latest of each name (a re-run replaces)."""
        url_vars = self._vars(repo, ref=ref, filter="latest", per_page=PER_PAGE)

        async def every_page(token: str | None) -> list[dict[str, Any]]:
            pages = self._api.getiter(
                CHECK_RUNS_FOR_REF, url_vars, oauth_token=token, iterable_key="check_runs"
            )
            return [_object(run) async for run in pages]

        return await self._as_installation(repo, every_page)

    async def combined_status(self, *, repo: Repo, ref: str) -> dict[str, Any]:
        """The commit statuses of `ref` rolled into one `state`, with `total_count` of them.

        With no status at all GitHub answers state `pending` and a total_count of 0.
        """
        # https://docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-reference
        return dict(_object(await self._get(repo, COMBINED_STATUS, ref=ref, per_page=PER_PAGE)))

    async def clone_url(self, *, repo: Repo) -> str:
        """The URL git clones the repository from; credentials travel separately."""
        return str((await self.get_repository(repo=repo))["clone_url"])

    # Writes

    async def create_comment(self, *, repo: Repo, issue_number: int, body: str) -> int:
        url_vars = self._vars(repo, issue_number=issue_number)
        data = await self._send(repo, "post", COMMENTS, url_vars, {"body": body})
        return int(_object(data)["id"])

    async def update_comment(self, *, repo: Repo, comment_id: int, body: str) -> None:
        url_vars = self._vars(repo, comment_id=comment_id)
        await self._send(repo, "patch", COMMENT, url_vars, {"body": body})

    async def add_labels(self, *, repo: Repo, issue_number: int, labels: Sequence[str]) -> None:
        url_vars = self._vars(repo, issue_number=issue_number)
        await self._send(repo, "post", LABELS, url_vars, {"labels": list(labels)})

    async def remove_label(self, *, repo: Repo, issue_number: int, name: str) -> None:
        """Take a label off; a label that is not there is already gone."""
        url_vars = self._vars(repo, issue_number=issue_number, name=name)
        await self._delete(repo, LABEL, url_vars, gone=(404,))

    async def delete_branch(self, *, repo: Repo, branch: str) -> bool:
        """Delete a branch; one that is not there is already gone (False: nothing deleted).

        GitHub answers 422 both for a missing ref and for the default branch, which it
        refuses to delete: either way nothing was deleted, which is what a rollback needs.
        """
        # https://docs.github.com/en/rest/git/refs#delete-a-reference
        url_vars = self._vars(repo, ref=f"heads/{branch}")
        return await self._delete(repo, REF, url_vars, gone=(404, 422))

    async def create_pull(
        self, *, repo: Repo, title: str, head: str, base: str, body: str
    ) -> dict[str, Any]:
        """Open a pull request from branch `head` of this repository into `base`."""
        data = {"title": title, "head": head, "base": base, "body": body}
        return dict(_object(await self._send(repo, "post", PULLS, self._vars(repo), data)))

    async def update_pull(
        self,
        *,
        repo: Repo,
        number: int,
        title: str | None = None,
        body: str | None = None,
        state: PullState | None = None,
    ) -> dict[str, Any]:
        """Change what is given (None leaves a field as it is)."""
        data = _given(title=title, body=body, state=None if state is None else PullState(state))
        url_vars = self._vars(repo, pull_number=number)
        return dict(_object(await self._send(repo, "patch", PULL, url_vars, data)))

    async def merge_pull(
        self, *, repo: Repo, number: int, sha: str, merge_method: MergeMethod
    ) -> dict[str, Any]:
        """Merge the pull request if its head is still `sha`.

        GitHub refuses with 405 (not mergeable: conflicts, branch protection, a draft), 409
        (the head moved past `sha`) or 422; those come back as a GitHubError.
        """
        # https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request
        data = {"sha": sha, "merge_method": MergeMethod(merge_method).value}
        url_vars = self._vars(repo, pull_number=number)
        return dict(_object(await self._send(repo, "put", MERGE, url_vars, data)))

    async def create_check_run(
        self,
        *,
        repo: Repo,
        name: str,
        head_sha: str,
        status: CheckStatus,
        conclusion: CheckConclusion | None = None,
        title: str,
        summary: str,
        text: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        external_id: str | None = None,
        details_url: str | None = None,
        annotations: Sequence[Annotation] = (),
    ) -> dict[str, Any]:
        """A new check run on `head_sha`; a completed one needs a conclusion, and only it.

        The output's summary and text are cut to GitHub's 65535 characters if need be.
        Annotations go 50 to a request: the first with the run, the rest in updates.
        """
        status, conclusion = _check_status(status, conclusion)
        data = {"name": name, "head_sha": head_sha, "status": status} | _check_fields(
            conclusion=conclusion,
            started_at=started_at,
            completed_at=completed_at,
            external_id=external_id,
            details_url=details_url,
        )
        first, rest = _batches(annotations)
        data["output"] = _output(title=title, summary=summary, text=text, annotations=first)
        run = _object(await self._send(repo, "post", CHECK_RUNS, self._vars(repo), data))
        return await self._annotate(repo, run, title=title, summary=summary, batches=rest)

    async def update_check_run(
        self,
        *,
        repo: Repo,
        check_run_id: int,
        status: CheckStatus | None = None,
        conclusion: CheckConclusion | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        external_id: str | None = None,
        details_url: str | None = None,
        annotations: Sequence[Annotation] = (),
    ) -> dict[str, Any]:
        """Change what is given (None leaves a field as it is); an output needs a summary.

        Annotations are added to the run's, 50 to a request (GitHub appends each batch).
        """
        if status is not None:
            status, conclusion = _check_status(status, conclusion)
        elif conclusion is not None:
            conclusion = CheckConclusion(conclusion)
        if summary is None and (title is not None or text is not None):
            raise ValueError("a check run's output needs a summary")
        if annotations and (title is None or summary is None):
            raise ValueError("annotations go in an output with a title and a summary")
        data = _given(status=status) | _check_fields(
            conclusion=conclusion,
            started_at=started_at,
            completed_at=completed_at,
            external_id=external_id,
            details_url=details_url,
        )
        first, rest = _batches(annotations)
        if summary is not None:
            data["output"] = _output(title=title, summary=summary, text=text, annotations=first)
        url_vars = self._vars(repo, check_run_id=check_run_id)
        run = _object(await self._send(repo, "patch", CHECK_RUN, url_vars, data))
        return await self._annotate(repo, run, title=title, summary=summary, batches=rest)

    async def _annotate(
        self,
        repo: Repo,
        run: dict[str, Any],
        *,
        title: str | None,
        summary: str | None,
        batches: Sequence[Sequence[Annotation]],
    ) -> dict[str, Any]:
        """Send the annotations left after the first 50, keeping the output's title and summary."""
        for batch in batches:
            assert summary is not None  # annotations always come with an output
            output = _output(title=title, summary=summary, text=None, annotations=batch)
            url_vars = self._vars(repo, check_run_id=int(run["id"]))
            run = _object(await self._send(repo, "patch", CHECK_RUN, url_vars, {"output": output}))
        return dict(run)

    async def create_reaction_for_comment(
        self, *, repo: Repo, comment_id: int, content: str
    ) -> None:
        url_vars = self._vars(repo, comment_id=comment_id)
        await self._send(repo, "post", COMMENT_REACTIONS, url_vars, {"content": content})

    # Plumbing

    @staticmethod
    def _vars(repo: Repo, **more: str | int | None) -> dict[str, str | int | None]:
        return {"owner": repo.owner, "repo": repo.name, **more}

    async def _get(self, repo: Repo, url: str, **more: str | int | None) -> Any:
        url_vars = self._vars(repo, **more)
        return await self._as_installation(
            repo, lambda token: self._api.getitem(url, url_vars, oauth_token=token)
        )

    async def _every_item(self, repo: Repo, url: str, **more: str | int) -> list[dict[str, Any]]:
        url_vars = self._vars(repo, per_page=PER_PAGE, **more)

        async def every_page(token: str | None) -> list[dict[str, Any]]:
            return [
                _object(item) async for item in self._api.getiter(url, url_vars, oauth_token=token)
            ]

        return await self._as_installation(repo, every_page)

    async def _get_or_none(self, repo: Repo, url: str, **more: str | int | None) -> Any:
        try:
            return await self._get(repo, url, **more)
        except GitHubError as exc:
            if exc.status_code == 404:
                return None
            raise

    async def _delete(
        self, repo: Repo, url: str, url_vars: UrlVars, *, gone: Sequence[int]
    ) -> bool:
        """DELETE, taking the statuses in `gone` to mean it was not there to begin with.

        True when something was deleted, False when it was already gone.
        """
        try:
            await self._as_installation(
                repo, lambda token: self._api.delete(url, url_vars, oauth_token=token)
            )
        except GitHubError as exc:
            if exc.status_code not in gone:
                raise
            return False
        return True

    async def _send(self, repo: Repo, method: str, url: str, url_vars: UrlVars, data: Any) -> Any:
        send = getattr(self._api, method)
        return await self._as_installation(
            repo, lambda token: send(url, url_vars, data=data, oauth_token=token)
        )

    async def _as_installation(self, repo: Repo, call: Callable[[str | None], Awaitable[T]]) -> T:
        """Run `call` with the installation's token, retrying what is worth retrying."""

        async def attempt() -> T:
            token = await self._installation_token(repo.installation_id)
            try:
                with self._translated():
                    return await call(token.reveal() if token else None)
            except GitHubError as exc:
                if exc.status_code == 401:
                    self._tokens.pop(repo.installation_id, None)
                raise

        return await self._retrying(attempt)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            retry=retry_if_exception(_worth_retrying),
            wait=_backoff,
            sleep=self._clock.sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        async for state in retrying:
            with state:
                return await attempt()
        raise AssertionError("tenacity re-raises the last failure")  # pragma: no cover

    async def _installation_token(self, installation_id: int) -> Secret | None:
        if self._app_id is None:
            return None
        lock = self._token_locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached and self._clock.now() < cached.expires_at - TOKEN_REFRESH_MARGIN:
                return cached.value
            token = await self._new_installation_token(installation_id)
            self._tokens[installation_id] = token
            return token.value

    async def _new_installation_token(self, installation_id: int) -> _Token:
        url_vars = {"installation_id": installation_id}
        with self._translated():
            data = await self._api.post(ACCESS_TOKENS, url_vars, data=b"", jwt=self._app_jwt())
        expires_at = datetime.fromisoformat(_object(data)["expires_at"].replace("Z", "+00:00"))
        return _Token(Secret(str(data["token"])), expires_at)

    def _app_jwt(self) -> str:
        assert self._app_id is not None and self._private_key is not None
        now = self._clock.now()
        claims = {
            "iat": int((now - JWT_BACKDATE).timestamp()),
            "exp": int((now + JWT_LIFETIME).timestamp()),
            "iss": self._app_id,
        }
        return jwt.encode(claims, self._private_key.reveal(), algorithm="RS256")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """gidgethub's and aiohttp's exceptions become Bosun's, with GitHub's message only."""
        try:
            yield
        except gidgethub.HTTPException as exc:
            raise _from_answer(exc, now=self._clock.now()) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"no answer from GitHub ({type(exc).__name__})"
            raise GitHubTransientError(message, status_code=NETWORK_FAILURE) from exc


def _from_answer(exc: gidgethub.HTTPException, *, now: datetime) -> GitHubError:
    status = int(exc.status_code)
    message = str(exc.args[0]) if exc.args and exc.args[0] else exc.status_code.phrase
    if status >= 500:
        return GitHubTransientError(message, status_code=status)
    wait = _rate_limit_wait(status, exc.headers, message, now=now)
    if wait is not None:
        return GitHubRateLimited(message, status_code=status, retry_after=wait)
    return GitHubError(message, status_code=status)


def _rate_limit_wait(
    status: int, headers: Mapping[str, str], message: str, *, now: datetime
) -> float | None:
    """Seconds to wait, per GitHub's rules for primary and secondary limits; None if no limit."""
    if status not in (403, 429):
        return None
    if "retry-after" in headers:
        return _seconds(headers["retry-after"])
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        until_reset = _seconds(headers["x-ratelimit-reset"]) - now.timestamp()
        return float(max(1, math.ceil(until_reset)))
    if status == 429 or "rate limit" in message.lower():
        return SECONDARY_LIMIT_WAIT
    return None


def _seconds(value: str) -> float:
    try:
        return max(0.0, float(value))
    except ValueError:
        return SECONDARY_LIMIT_WAIT


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, GitHubRateLimited):
        return exc.retry_after <= MAX_RETRY_AFTER
    return isinstance(exc, GitHubTransientError)


def _backoff(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, GitHubRateLimited):
        return exc.retry_after
    return min(MAX_BACKOFF, 2.0 ** (state.attempt_number - 1))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "github.retry",
        attempt=state.attempt_number,
        sleep=state.upcoming_sleep,
        error=type(exc).__name__,
        status_code=getattr(exc, "status_code", None),
    )


def _by_app(comment: Mapping[str, Any], identity: AppIdentity | None) -> bool:
    """Whether the App's bot account wrote the comment (any bot account, without an App)."""
    user = comment.get("user") or {}
    login = str(user.get("login") or "")
    if user.get("type") != "Bot" or not login.endswith("[bot]"):
        return False
    return identity is None or login == identity.bot_login


def _is_check_run(run: Mapping[str, Any], name: str, identity: AppIdentity | None) -> bool:
    app = run.get("app") or {}
    return run.get("name") == name and (identity is None or app.get("id") == identity.id)


def _check_status(
    status: CheckStatus, conclusion: CheckConclusion | None
) -> tuple[CheckStatus, CheckConclusion | None]:
    """Both as enums (plain strings are checked too), consistent with each other."""
    # https://docs.github.com/en/rest/checks/runs#create-a-check-run: a conclusion completes
    # the run, and a completed run must have one.
    status = CheckStatus(status)
    conclusion = None if conclusion is None else CheckConclusion(conclusion)
    if status is CheckStatus.COMPLETED and conclusion is None:
        raise ValueError("a completed check run needs a conclusion")
    if status is not CheckStatus.COMPLETED and conclusion is not None:
        raise ValueError(f"a check run with a conclusion is completed, not {status}")
    return status, conclusion


def _check_fields(
    *,
    conclusion: CheckConclusion | None,
    started_at: datetime | None,
    completed_at: datetime | None,
    external_id: str | None,
    details_url: str | None,
) -> dict[str, Any]:
    return _given(
        conclusion=conclusion,
        started_at=_iso(started_at) if started_at else None,
        completed_at=_iso(completed_at) if completed_at else None,
        external_id=external_id,
        details_url=details_url,
    )


def _output(
    *,
    title: str | None,
    summary: str,
    text: str | None,
    annotations: Sequence[Annotation] = (),
) -> dict[str, Any]:
    return _given(
        title=title,
        summary=fit_output(summary),
        text=None if text is None else fit_output(text),
        annotations=[annotation.as_json() for annotation in annotations] or None,
    )


def _batches(
    annotations: Sequence[Annotation],
) -> tuple[Sequence[Annotation], list[Sequence[Annotation]]]:
    """The first request's annotations, and those of each request after it."""
    size = ANNOTATIONS_PER_REQUEST
    chunks = [annotations[i : i + size] for i in range(0, len(annotations), size)]
    return (chunks[0] if chunks else ()), chunks[1:]


def fit_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """`text` cut to `limit` UTF-8 bytes (so to as many characters at most), marked as cut.

    The cut falls at a line break near the end where there is one, never inside a
    character, and an unclosed code fence is closed so that the page still renders.
    """
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(TRUNCATED.encode()) - len(FENCE) - 1
    kept = encoded[:room].decode(errors="ignore")
    line_end = kept.rfind("\n")
    if line_end > len(kept) * 3 // 4:  # end on a whole line, unless that loses too much
        kept = kept[:line_end]
    if kept.count(FENCE) % 2:
        kept += "\n" + FENCE
    return kept + TRUNCATED


def _given(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a time sent to GitHub must carry its time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GitHubError(f"expected a JSON object, got {type(data).__name__}", status_code=200)
    return data


def _array(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise GitHubError(f"expected a JSON array, got {type(data).__name__}", status_code=200)
    return data
