"""The stand-in forge's App, repository, contents, issue, comment and label endpoints."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from bot.demo.forge_git import BareRepo, TreeEntry
from bot.demo.forge_http import (
    Answer,
    ApiContext,
    invalid,
    json_body,
    json_object,
    paged,
    string_field,
)
from bot.demo.forge_json import permission_body, timestamp
from bot.demo.forge_state import REACTIONS

REPO = "/repos/{owner}/{repo}"
ISSUE = REPO + "/issues/{number:\\d+}"
COMMENT = REPO + "/issues/comments/{comment_id:\\d+}"


@dataclass(frozen=True)
class Content:
    """What a path holds at a commit: a file's bytes or a directory's entries."""

    commit: str
    entry: TreeEntry
    data: bytes = b""
    children: list[TreeEntry] = field(default_factory=list)


def read_content(git: BareRepo, ref: str, path: str) -> Content | None:
    """The content at `path` of the commit `ref` names; None when either is missing."""
    commit = git.resolve(ref)
    entry = git.entry(commit, path) if commit else None
    if commit is None or entry is None:
        return None
    if entry.kind == "dir":
        return Content(commit, entry, children=git.children(commit, path))
    return Content(commit, entry, data=git.blob(entry.sha) if entry.kind == "file" else b"")


class RepositoryApi:
    """GitHub's endpoints for the App, repositories and their issues, in its URL shapes."""

    def __init__(self, context: ApiContext) -> None:
        self._ctx = context
        self._shapes = context.shapes
        self._state = context.state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/app", self.get_app),
            web.post("/app/installations/{installation_id:\\d+}/access_tokens", self.new_token),
            web.get(REPO, self.get_repository),
            web.get(REPO + "/collaborators/{username}/permission", self.get_permission),
            web.get(REPO + "/git/ref/{ref:.+}", self.get_ref),
            web.delete(REPO + "/git/refs/{ref:.+}", self.delete_ref),
            web.get(REPO + "/contents", self.get_content),
            web.get(REPO + "/contents/{path:.*}", self.get_content),
            web.get(ISSUE, self.get_issue),
            web.get(ISSUE + "/comments", self.list_comments),
            web.post(ISSUE + "/comments", self.create_comment),
            web.get(ISSUE + "/labels", self.list_labels),
            web.post(ISSUE + "/labels", self.add_labels),
            web.delete(ISSUE + "/labels/{name}", self.remove_label),
            web.get(COMMENT, self.get_comment),
            web.patch(COMMENT, self.update_comment),
            web.post(COMMENT + "/reactions", self.create_reaction),
        ]

    # The App

    async def get_app(self, request: web.Request) -> web.Response:
        self._ctx.auth.check_app(request)
        return web.json_response(self._shapes.app_json())

    async def new_token(self, request: web.Request) -> web.Response:
        self._ctx.auth.check_app(request)
        token, expires_at = self._ctx.auth.new_token(int(request.match_info["installation_id"]))
        body = {
            "token": token,
            "expires_at": timestamp(expires_at),
            "permissions": self._shapes.app_json()["permissions"],
            "repository_selection": "all",
        }
        return web.json_response(body, status=201)

    # Repository, refs, contents, permission

    async def get_repository(self, request: web.Request) -> web.Response:
        return web.json_response(self._shapes.repository(self._ctx.repo(request)))

    async def get_permission(self, request: web.Request) -> web.Response:
        repo = self._ctx.repo(request)
        username = request.match_info["username"]
        role = repo.collaborators.get(username, "none")
        return web.json_response(permission_body(self._shapes, username, role))

    async def get_ref(self, request: web.Request) -> web.Response:
        repo = self._ctx.repo(request)
        name = request.match_info["ref"].removeprefix("refs/")
        found = await asyncio.to_thread(repo.git.ref, name)
        if found is None:
            raise Answer(404, "Not Found")
        return web.json_response(self._shapes.ref(repo, name, *found))

    async def delete_ref(self, request: web.Request) -> web.Response:
        # https://docs.github.com/en/rest/git/refs#delete-a-reference: 422 when there is none
        repo = self._ctx.repo(request)
        name = request.match_info["ref"].removeprefix("refs/")
        if name == f"heads/{repo.default_branch}":
            raise Answer(422, "Cannot delete the default branch")
        if not await asyncio.to_thread(repo.git.delete_ref, name):
            raise Answer(422, "Reference does not exist")
        if name.startswith("heads/"):
            self._state.close_pulls_from(repo, name.removeprefix("heads/"))
        return web.Response(status=204)

    async def get_content(self, request: web.Request) -> web.Response:
        repo = self._ctx.repo(request)
        path = request.match_info.get("path", "").strip("/")
        ref = request.query.get("ref") or repo.default_branch
        content = await asyncio.to_thread(read_content, repo.git, ref, path)
        if content is None:
            raise Answer(404, "Not Found")
        commit, entry = content.commit, content.entry
        if entry.kind == "dir":
            listing = [self._shapes.entry(repo, ref, commit, c) for c in content.children]
            return web.json_response(listing)
        if entry.kind == "file":
            return web.json_response(self._shapes.file(repo, ref, commit, entry, content.data))
        return web.json_response(self._shapes.entry(repo, ref, commit, entry))

    # Issues, comments, labels, reactions

    async def get_issue(self, request: web.Request) -> web.Response:
        repo, issue = self._ctx.issue(request)
        return web.json_response(self._shapes.issue(repo, issue))

    async def list_comments(self, request: web.Request) -> web.Response:
        repo, issue = self._ctx.issue(request)
        return paged(
            request, [self._shapes.comment(repo, c) for c in repo.comments_on(issue.number)]
        )

    async def create_comment(self, request: web.Request) -> web.Response:
        body = string_field(await json_object(request), "body", resource="IssueComment")
        repo, issue = self._ctx.issue(request)
        bot = self._shapes.bot_login
        comment = self._state.new_comment(repo, issue, body, user=bot, via_app=True)
        answer = self._shapes.comment(repo, comment)
        return web.json_response(answer, status=201, headers={"Location": answer["url"]})

    async def get_comment(self, request: web.Request) -> web.Response:
        repo, comment = self._ctx.comment(request)
        return web.json_response(self._shapes.comment(repo, comment))

    async def update_comment(self, request: web.Request) -> web.Response:
        body = string_field(await json_object(request), "body", resource="IssueComment")
        repo, comment = self._ctx.comment(request)
        comment.body = body
        comment.updated_at = self._state.clock.now()
        return web.json_response(self._shapes.comment(repo, comment))

    async def create_reaction(self, request: web.Request) -> web.Response:
        content = string_field(await json_object(request), "content", resource="Reaction")
        if content not in REACTIONS:
            raise invalid("Reaction", "content")
        _, comment = self._ctx.comment(request)
        mine = (self._shapes.bot_login, content)
        exists = mine in comment.reactions
        if not exists:
            comment.reactions.append(mine)
        answer = self._shapes.reaction(comment, content, self._state.clock.now())
        return web.json_response(answer, status=200 if exists else 201)

    async def list_labels(self, request: web.Request) -> web.Response:
        repo, issue = self._ctx.issue(request)
        return paged(request, [self._shapes.label(repo, name) for name in issue.labels])

    async def add_labels(self, request: web.Request) -> web.Response:
        # https://docs.github.com/en/rest/issues/labels#add-labels-to-an-issue: the body is
        # {"labels": [...]} or a bare list, of names or of {"name": ...} objects.
        payload = await json_body(request)
        names = payload.get("labels") if isinstance(payload, dict) else payload
        if not isinstance(names, list) or not names:
            raise invalid("Label", "labels")
        wanted = [item.get("name") if isinstance(item, dict) else item for item in names]
        if not all(isinstance(name, str) and name for name in wanted):
            raise invalid("Label", "name")
        repo, issue = self._ctx.issue(request)
        for name in wanted:
            self._state.label(repo, issue, str(name))
        return web.json_response([self._shapes.label(repo, name) for name in issue.labels])

    async def remove_label(self, request: web.Request) -> web.Response:
        repo, issue = self._ctx.issue(request)
        if not self._state.unlabel(issue, request.match_info["name"]):
            raise Answer(404, "Label does not exist")
        return web.json_response([self._shapes.label(repo, name) for name in issue.labels])
