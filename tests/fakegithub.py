"""A stateful GitHub over real HTTP, answering in the shapes GitHub's REST description requires."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlencode

import jwt
from aiohttp import web

from bot.github import Repo

BOT_LOGIN = "bosun[bot]"
BOT_USER_ID = 149_000_001
APP_SLUG = "bosun"
TOKEN_LIFETIME = timedelta(hours=1)
RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"
WEB = "https://github.com"
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
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
    number: int
    title: str
    body: str
    user: str
    labels: list[str]


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


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    installation_id: int
    default_branch: str
    created_at: datetime
    branches: dict[str, str] = field(default_factory=dict)
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    collaborators: dict[str, str] = field(default_factory=dict)
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class FakeGitHub:
    """GitHub's REST API for one App, in memory, on 127.0.0.1, in a thread of its own.

    Start it once with `start()`; `reset()` forgets every repository, token and script.
    Seed with `add_repo`, `set_file`, `set_permission`, `add_issue`, `add_comment`; assert on
    `comments`, `labels`, `reactions`, `requests`; script failures with `fail_next`.
    """

    def __init__(self, *, app_id: str, public_key: str | bytes) -> None:
        self.app_id = app_id
        self._public_key = public_key
        self._lock = threading.RLock()
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

    def reset(self) -> None:
        """Forget all state; the time source goes back to the wall clock."""
        with self._lock:
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
    ) -> Repo:
        with self._lock:
            self.installations.setdefault(installation_id, owner)
            repo = FakeRepo(
                id=next(self._ids),
                owner=owner,
                name=name,
                installation_id=installation_id,
                default_branch=default_branch,
                created_at=self.now(),
            )
            self._repos[owner, name] = repo
            self._commit(repo, default_branch, dict(files or {}))
        return Repo(installation_id=installation_id, owner=owner, name=name)

    def set_file(
        self, owner: str, name: str, path: str, content: bytes | None, *, branch: str | None = None
    ) -> str:
        """Commit one file (None deletes it) on a branch; returns the new commit sha."""
        with self._lock:
            repo = self._repo(owner, name)
            branch = branch or repo.default_branch
            tree = dict(repo.trees[repo.branches[branch]])
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content
            return self._commit(repo, branch, tree)

    def add_branch(
        self, owner: str, name: str, branch: str, *, from_branch: str | None = None
    ) -> str:
        with self._lock:
            repo = self._repo(owner, name)
            sha = repo.branches[from_branch or repo.default_branch]
            repo.branches[branch] = sha
            return sha

    def branch_sha(self, owner: str, name: str, branch: str) -> str:
        with self._lock:
            return self._repo(owner, name).branches[branch]

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
    ) -> int:
        with self._lock:
            repo = self._repo(owner, name)
            number = number or max(repo.issues, default=0) + 1
            repo.issues[number] = FakeIssue(number, title, body, user, [])
            for label in labels:
                self._label_issue(repo, repo.issues[number], label)
            return number

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

    # The HTTP application

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._recorded, self._scripted, self._conditional])
        repo = "/repos/{owner}/{repo}"
        app.router.add_post(
            "/app/installations/{installation_id}/access_tokens", self._create_token
        )
        app.router.add_get(repo, self._get_repository)
        app.router.add_get(repo + "/collaborators/{username}/permission", self._get_permission)
        app.router.add_get(repo + "/git/ref/{ref:.+}", self._get_ref)
        app.router.add_get(repo + "/contents/{path:.*}", self._get_content)
        app.router.add_patch(repo + "/issues/comments/{comment_id:\\d+}", self._update_comment)
        app.router.add_post(
            repo + "/issues/comments/{comment_id:\\d+}/reactions", self._create_reaction
        )
        app.router.add_get(repo + "/issues/{number:\\d+}/comments", self._list_comments)
        app.router.add_post(repo + "/issues/{number:\\d+}/comments", self._create_comment)
        app.router.add_post(repo + "/issues/{number:\\d+}/labels", self._add_labels)
        app.router.add_delete(repo + "/issues/{number:\\d+}/labels/{name}", self._remove_label)
        return app

    @web.middleware
    async def _recorded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Answer as answer:
            response = self._error(answer)
        except web.HTTPException as exc:
            response = self._error(Answer(exc.status, exc.reason))
        with self._lock:
            for name, value in self._rate_limit_headers().items():
                response.headers.setdefault(name, value)
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
            if not ref.startswith("heads/") or branch not in repo.branches:
                raise Answer(404, "Not Found")
            return web.json_response(self._ref_json(repo, branch))

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
        per_page = min(int(request.query.get("per_page", "30")), 100)
        page = max(int(request.query.get("page", "1")), 1)
        with self._lock:
            repo, issue = self._visible_issue(request)
            everything = [
                self._comment_json(repo, c)
                for c in self._comments.values()
                if (c.owner, c.repo, c.issue_number) == (repo.owner, repo.name, issue.number)
            ]
            url = f"{self._api}/repos/{repo.full_name}/issues/{issue.number}/comments"
        response = web.json_response(everything[(page - 1) * per_page : page * per_page])
        last = max(1, -(-len(everything) // per_page))
        if last > 1:
            response.headers["Link"] = _link_header(url, per_page, page, last)
        return response

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

    def _commit(self, repo: FakeRepo, branch: str, tree: dict[str, bytes]) -> str:
        sha = hashlib.sha1(f"{repo.full_name}:{next(self._ids)}".encode()).hexdigest()  # noqa: S324 - a git object name, not security
        repo.trees[sha] = tree
        repo.branches[branch] = sha
        return sha

    def _tree(self, repo: FakeRepo, ref: str) -> dict[str, bytes]:
        sha = repo.branches.get(ref.removeprefix("refs/heads/"), ref)
        if sha not in repo.trees:
            raise Answer(404, f"No commit found for the ref {ref}")
        return repo.trees[sha]

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
            "id": int(self.app_id) if self.app_id.isdigit() else 1,
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

    def _comment_json(self, repo: FakeRepo, comment: FakeComment) -> dict[str, Any]:
        issue_url = f"{self._api}/repos/{repo.full_name}/issues/{comment.issue_number}"
        url = f"{self._api}/repos/{repo.full_name}/issues/comments/{comment.id}"
        user = (
            self._bot_user()
            if comment.user == BOT_LOGIN
            else _user(self._api, comment.user, _user_id(comment.user))
        )
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

    def _label_json(self, repo: FakeRepo, name: str) -> dict[str, Any]:
        return {
            "id": repo.labels[name],
            "node_id": f"LA_{repo.labels[name]}",
            "url": f"{self._api}/repos/{repo.full_name}/labels/{quote(name, safe='')}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    def _ref_json(self, repo: FakeRepo, branch: str) -> dict[str, Any]:
        base = f"{self._api}/repos/{repo.full_name}/git"
        sha = repo.branches[branch]
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
        open_issues = len(repo.issues)
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
            "fork": False,
            "url": api,
            **{key: api + suffix for key, suffix in templates.items()},
            "git_url": f"git://github.com/{full}.git",
            "ssh_url": f"git@github.com:{full}.git",
            "clone_url": f"{html}.git",
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
            "size": sum(len(c) for c in repo.trees[repo.branches[repo.default_branch]].values()),
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


def _link_header(url: str, per_page: int, page: int, last: int) -> str:
    def link(n: int, rel: str) -> str:
        return f'<{url}?{urlencode({"per_page": per_page, "page": n})}>; rel="{rel}"'

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
