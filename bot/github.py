"""Every call Bosun makes to GitHub: App tokens, conditional reads, mapped errors, retries."""

from __future__ import annotations

import asyncio
import base64
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import gidgethub
import gidgethub.aiohttp
import jwt
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.clock import Clock
from bot.errors import GitHubError, GitHubRateLimited, GitHubTransientError, PayloadError
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

# Path parameters go through url_vars, which percent-encodes a slash in a branch name or a
# file path as %2F: that is how GitHub's description expects them (`x-multi-segment`).
ACCESS_TOKENS = "/app/installations/{installation_id}/access_tokens"
REPOSITORY = "/repos/{owner}/{repo}"
PERMISSION = "/repos/{owner}/{repo}/collaborators/{username}/permission"
BRANCH_REF = "/repos/{owner}/{repo}/git/ref/{ref}"
CONTENTS = "/repos/{owner}/{repo}/contents/{path}{?ref}"
COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}"
COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
COMMENT_REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
LABEL = "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"


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
            raise GitHubError(f"{repo.full_name}:{path} is too large to read", status_code=200)
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
        try:
            await self._as_installation(
                repo, lambda token: self._api.delete(LABEL, url_vars, oauth_token=token)
            )
        except GitHubError as exc:
            if exc.status_code != 404:
                raise

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

    async def _get_or_none(self, repo: Repo, url: str, **more: str | int | None) -> Any:
        try:
            return await self._get(repo, url, **more)
        except GitHubError as exc:
            if exc.status_code == 404:
                return None
            raise

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


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GitHubError(f"expected a JSON object, got {type(data).__name__}", status_code=200)
    return data
