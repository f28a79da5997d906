"""The one road to GitHub: App tokens, conditional reads, mapped errors, and safe retries.

Reads and idempotent writes are retried on GitHub's transient failures and rate limits. A
create (a POST that makes something new) is never blindly sent again: after a failure that
GitHub may have acted on (a 5xx, no answer), the object is looked up by its identity first.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import gidgethub
import gidgethub.aiohttp
import jwt
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.core.clock import Clock
from bot.core.errors import GitHubError, GitHubRateLimited, GitHubTransientError, SettingsError
from bot.github.types import AppIdentity, Repo
from bot.settings import Secret

log = structlog.get_logger("bosun.github")

T = TypeVar("T")
UrlVars = Mapping[str, str | int | None]
Find = Callable[[], Awaitable[Any]]

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

APP = "/app"
ACCESS_TOKENS = "/app/installations/{installation_id}/access_tokens"


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


class Transport:
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

                data = await self._retrying(attempt)
                if not isinstance(data, dict):
                    raise GitHubError("GET /app answered no object", status_code=200)
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

    # Requests

    async def get(self, repo: Repo, url: str, **more: str | int | None) -> Any:
        url_vars = _vars(repo, **more)
        return await self._as_installation(
            repo, lambda token: self._api.getitem(url, url_vars, oauth_token=token)
        )

    async def get_or_none(self, repo: Repo, url: str, **more: str | int | None) -> Any:
        """The answer, or None when GitHub says there is no such thing (404)."""
        try:
            return await self.get(repo, url, **more)
        except GitHubError as exc:
            if exc.status_code == 404:
                return None
            raise

    async def every_item(
        self, repo: Repo, url: str, *, iterable_key: str | None = None, **more: str | int | None
    ) -> list[Any]:
        """Every item of every page (GitHub's Link header), in GitHub's order."""
        url_vars = _vars(repo, per_page=PER_PAGE, **more)

        async def every_page(token: str | None) -> list[Any]:
            pages = self._pages(url, url_vars, token, iterable_key)
            return [item async for item in pages]

        return await self._as_installation(repo, every_page)

    async def first_item(
        self, repo: Repo, url: str, wanted: Callable[[Any], bool], **more: str | int | None
    ) -> Any:
        """The first item of any page that is `wanted`, reading no page after it; or None."""
        url_vars = _vars(repo, per_page=PER_PAGE, **more)

        async def first(token: str | None) -> Any:
            async with aclosing(self._pages(url, url_vars, token, None)) as pages:
                async for item in pages:
                    if wanted(item):
                        return item
            return None

        return await self._as_installation(repo, first)

    async def send(
        self,
        repo: Repo,
        method: str,
        url: str,
        data: Any,
        *,
        idempotent: bool = True,
        **more: str | int | None,
    ) -> Any:
        """A write. An idempotent one (PATCH, PUT, a POST that sets what is already set) does
        the same sent twice as once, so it is retried like a read; any other is sent once."""
        send = getattr(self._api, method)
        url_vars = _vars(repo, **more)

        async def call(token: str | None) -> Any:
            return await send(url, url_vars, data=data, oauth_token=token)

        if idempotent:
            return await self._as_installation(repo, call)
        return await self._once(repo, call)

    async def create(
        self, repo: Repo, url: str, data: Any, *, find: Find, **more: str | int | None
    ) -> Any:
        """POST something new, once per try. A rate limit means GitHub did nothing, so the
        request is sent again after the wait; after a 5xx or no answer GitHub may have made
        it anyway, so `find` looks it up by its identity first and returns what it finds."""
        url_vars = _vars(repo, **more)
        for attempt in range(1, self._max_attempts + 1):
            try:
                return await self._once(
                    repo, lambda token: self._api.post(url, url_vars, data=data, oauth_token=token)
                )
            except GitHubRateLimited as exc:
                if attempt == self._max_attempts or not _worth_retrying(exc):
                    raise
                await self._clock.sleep(exc.retry_after)
            except GitHubTransientError as exc:
                if attempt == self._max_attempts:
                    raise
                wait = min(MAX_BACKOFF, 2.0 ** (attempt - 1))
                log.warning("github.create_unsure", url=url, status_code=exc.status_code)
                await self._clock.sleep(wait)
                found = await find()
                if found is not None:
                    return found
        raise AssertionError("the loop returns or raises")  # pragma: no cover

    async def delete(self, repo: Repo, url: str, *, gone: tuple[int, ...], **more: Any) -> bool:
        """DELETE, taking the statuses in `gone` to mean it was not there to begin with.

        True when something was deleted, False when it was already gone.
        """
        url_vars = _vars(repo, **more)
        try:
            await self._as_installation(
                repo, lambda token: self._api.delete(url, url_vars, oauth_token=token)
            )
        except GitHubError as exc:
            if exc.status_code not in gone:
                raise
            return False
        return True

    # Plumbing

    def _pages(
        self, url: str, url_vars: UrlVars, token: str | None, iterable_key: str | None
    ) -> AsyncGenerator[Any, None]:
        if iterable_key is None:
            return self._api.getiter(url, url_vars, oauth_token=token)
        return self._api.getiter(url, url_vars, oauth_token=token, iterable_key=iterable_key)

    async def _as_installation(self, repo: Repo, call: Callable[[str | None], Awaitable[T]]) -> T:
        """Run `call` with the installation's token, retrying what is worth retrying."""
        return await self._retrying(lambda: self._once(repo, call))

    async def _once(self, repo: Repo, call: Callable[[str | None], Awaitable[T]]) -> T:
        token = await self._installation_token(repo.installation_id)
        try:
            with self._translated():
                return await call(token.reveal() if token else None)
        except GitHubError as exc:
            if exc.status_code == 401:
                self._tokens.pop(repo.installation_id, None)
            raise

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
        # Asking for a token twice makes two tokens, both good: no harm in a retry.
        url_vars = {"installation_id": installation_id}
        with self._translated():
            data = await self._api.post(ACCESS_TOKENS, url_vars, data=b"", jwt=self._app_jwt())
        if not isinstance(data, dict):
            raise GitHubError("the token endpoint answered no object", status_code=200)
        expires_at = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
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
            raise from_answer(exc, now=self._clock.now()) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"no answer from GitHub ({type(exc).__name__})"
            raise GitHubTransientError(message, status_code=NETWORK_FAILURE) from exc


def _vars(repo: Repo, **more: str | int | None) -> dict[str, str | int | None]:
    # Path parameters go through url_vars, which percent-encodes a slash in a branch name or
    # a file path as %2F: that is how GitHub's description expects them (`x-multi-segment`).
    return {"owner": repo.owner, "repo": repo.name, **more}


def from_answer(exc: gidgethub.HTTPException, *, now: datetime) -> GitHubError:
    """gidgethub's exception as Bosun's: transient, rate limited, or final."""
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
