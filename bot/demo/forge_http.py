"""The HTTP side shared by the stand-in forge's API: errors, App auth, paging, visibility."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from bot.core.clock import Clock
from bot.demo.forge_json import Shapes, error_body
from bot.demo.forge_state import CheckRun, Comment, ForgeRepo, ForgeState, Issue, Pull

TOKEN_LIFETIME = timedelta(hours=1)  # as GitHub's installation tokens
# https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
JWT_CLOCK_DRIFT = 60
JWT_MAX_LIFETIME = 600
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Answer(Exception):
    """Stop handling a request and answer with GitHub's error body."""

    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def invalid(resource: str, field_name: str) -> Answer:
    error = {"resource": resource, "code": "invalid", "field": field_name}
    return Answer(422, "Validation Failed", [error])


def custom(resource: str, message: str) -> Answer:
    error = {"resource": resource, "code": "custom", "message": message}
    return Answer(422, "Validation Failed", [error])


@web.middleware
async def github_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors in GitHub's JSON shape on the API's paths; the pages keep aiohttp's."""
    try:
        return await handler(request)
    except Answer as answer:
        return _error(answer.status, answer.message, answer.errors)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(("/repos/", "/app")):
            raise
        return _error(exc.status, exc.reason)


@web.middleware
async def conditional(request: web.Request, handler: Handler) -> web.StreamResponse:
    """ETag every successful read and answer 304 to a client that has it, as GitHub does."""
    response = await handler(request)
    if request.method != "GET" or response.status != 200:
        return response
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return response
    etag = f'W/"{hashlib.sha256(response.body).hexdigest()[:40]}"'
    response.headers["ETag"] = etag
    wanted = [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]
    if etag in wanted:
        return web.Response(status=304, headers={"ETag": etag})
    return response


def paged(request: web.Request, items: list[Any], *, key: str | None = None) -> web.Response:
    """One page of `items` per `per_page` and `page`, with GitHub's Link header."""
    per_page = min(max(_int_query(request, "per_page", 30), 1), 100)
    page = max(_int_query(request, "page", 1), 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    response = web.json_response({"total_count": len(items), key: chunk} if key else chunk)
    last = max(1, math.ceil(len(items) / per_page))
    rels = [("next", page + 1), ("last", last)] if page < last else []
    rels += [("prev", page - 1), ("first", 1)] if page > 1 else []
    if rels:
        links = [
            f'<{request.url.update_query(per_page=per_page, page=n)}>; rel="{rel}"'
            for rel, n in rels
        ]
        response.headers["Link"] = ", ".join(links)
    return response


async def json_body(request: web.Request) -> Any:
    """The request's JSON; an empty body is null."""
    try:
        return json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise Answer(400, "Problems parsing JSON") from exc


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; an empty body is an empty object."""
    payload = await json_body(request)
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise Answer(400, "Problems parsing JSON")
    return payload


def string_field(payload: Any, name: str, *, resource: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str):
        missing = {"resource": resource, "code": "missing_field", "field": name}
        raise Answer(422, "Validation Failed", [missing])
    return value


class Auth:
    """GitHub App auth: the App's JWT buys installation tokens, which open the API.

    With `public_key`, a JWT must be signed by it (RS256); without, any well-formed JWT
    naming `app_id` will do.
    """

    def __init__(
        self, *, app_id: str, public_key: str | None, installation_id: int, clock: Clock
    ) -> None:
        self.app_id = app_id
        self.installation_id = installation_id
        self._public_key = public_key
        self._clock = clock
        self._tokens: dict[str, datetime] = {}

    def check_app(self, request: web.Request) -> None:
        """GitHub's checks on an App's JWT: signed by the App, iat not ahead, exp near."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Answer(401, "A JSON web token could not be decoded")
        # Time claims are checked below against the forge's clock, not PyJWT's.
        options: jwt.types.Options = {
            "verify_signature": self._public_key is not None,
            "verify_exp": False,
            "verify_iat": False,
            "require": ["iat", "exp", "iss"],
        }
        try:
            key = self._public_key or ""
            claims = jwt.decode(token, key, algorithms=["RS256"], options=options)
        except jwt.PyJWTError as exc:
            raise Answer(401, "A JSON web token could not be decoded") from exc
        now = self._clock.now().timestamp()
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or iat > now + JWT_CLOCK_DRIFT:
            raise Answer(401, "'Issued at' claim ('iat') must be an Integer in the past")
        if not isinstance(exp, int | float) or not now < exp <= now + JWT_MAX_LIFETIME:
            raise Answer(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims["iss"]) != self.app_id:
            raise Answer(401, "Integration not found")

    def new_token(self, installation_id: int) -> tuple[str, datetime]:
        if installation_id != self.installation_id:
            raise Answer(404, "Not Found")
        token = "ghs_" + secrets.token_hex(18)
        self._tokens[token] = expires_at = self._clock.now() + TOKEN_LIFETIME
        return token, expires_at

    def check_installation(self, request: web.Request) -> None:
        """The request carries a live installation token (`token X` or `Bearer X`)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not scheme:
            raise Answer(401, "Requires authentication")
        expires_at = self._tokens.get(token) if scheme.lower() in ("token", "bearer") else None
        if expires_at is None or expires_at <= self._clock.now():
            raise Answer(401, "Bad credentials")


@dataclass(frozen=True)
class ApiContext:
    """What every handler group shares, and what a request may see of it."""

    state: ForgeState
    shapes: Shapes
    auth: Auth

    def repo(self, request: web.Request) -> ForgeRepo:
        self.auth.check_installation(request)
        repo = self.state.repos.get((request.match_info["owner"], request.match_info["repo"]))
        if repo is None:
            raise Answer(404, "Not Found")
        return repo

    def issue(self, request: web.Request) -> tuple[ForgeRepo, Issue]:
        repo = self.repo(request)
        issue = repo.issues.get(int(request.match_info["number"]))
        if issue is None:
            raise Answer(404, "Not Found")
        return repo, issue

    def pull(self, request: web.Request) -> tuple[ForgeRepo, Issue, Pull]:
        repo, issue = self.issue(request)
        if issue.pull is None:
            raise Answer(404, "Not Found")
        return repo, issue, issue.pull

    def comment(self, request: web.Request) -> tuple[ForgeRepo, Comment]:
        repo = self.repo(request)
        comment = repo.comments.get(int(request.match_info["comment_id"]))
        if comment is None:
            raise Answer(404, "Not Found")
        return repo, comment

    def check_run(self, request: web.Request) -> tuple[ForgeRepo, CheckRun]:
        repo = self.repo(request)
        run = repo.check_runs.get(int(request.match_info["run_id"]))
        if run is None:
            raise Answer(404, "Not Found")
        return repo, run


def _int_query(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, default))
    except ValueError:
        return default


def _error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> web.Response:
    return web.json_response(error_body(status, message, errors), status=status)
