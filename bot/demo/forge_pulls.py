"""The stand-in forge's pull request endpoints: heads and diffs read from git when asked."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.demo.forge_git import BareRepo
from bot.demo.forge_http import ApiContext, custom, invalid, json_object, paged
from bot.demo.forge_http import string_field as field
from bot.demo.forge_json import PullDetail
from bot.demo.forge_state import ForgeRepo, Issue, Pull, pulls_in, refresh

PULLS = "/repos/{owner}/{repo}/pulls"
PULL = PULLS + "/{number:\\d+}"
REVIEWS = PULL + "/reviews"
DIFF_MEDIA_TYPE = "application/vnd.github.diff"


def pull_detail(git: BareRepo, base_sha: str, head_sha: str) -> PullDetail:
    """What a single pull request's answer adds, worked out by git."""
    return PullDetail(
        stats=git.stats(base_sha, head_sha), mergeable=git.mergeable(base_sha, head_sha)
    )


class PullApi:
    """Create, find, read and edit pull requests between branches of one repository."""

    def __init__(self, context: ApiContext) -> None:
        self._ctx = context
        self._shapes = context.shapes
        self._state = context.state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PULLS, self.list_pulls),
            web.post(PULLS, self.create_pull),
            web.get(PULL, self.get_pull),
            web.patch(PULL, self.update_pull),
            web.get(REVIEWS, self.list_reviews),
        ]

    async def list_pulls(self, request: web.Request) -> web.Response:
        repo = self._ctx.repo(request)
        query = request.query
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise invalid("PullRequest", "state")
        refresh(repo, await asyncio.to_thread(repo.git.branches))
        chosen = pulls_in(repo, state, newest_first=query.get("direction") != "asc")
        if "head" in query:
            # "user:ref-name"; GitHub has forks, the forge only the repository's own owner.
            owner, _, branch = query["head"].rpartition(":")
            mine = owner in ("", repo.owner)
            chosen = [i for i in chosen if mine and i.pull and i.pull.head == branch]
        if "base" in query:
            chosen = [i for i in chosen if i.pull and i.pull.base == query["base"]]
        return paged(request, [self._shapes.pull(repo, issue) for issue in chosen])

    async def create_pull(self, request: web.Request) -> web.Response:
        payload = await json_object(request)
        title = field(payload, "title", resource="PullRequest")
        owner, _, head = field(payload, "head", resource="PullRequest").rpartition(":")
        base = field(payload, "base", resource="PullRequest")
        repo = self._ctx.repo(request)
        tips = await asyncio.to_thread(repo.git.branches)
        if owner not in ("", repo.owner) or head not in tips:
            raise invalid("PullRequest", "head")
        if base not in tips:
            raise invalid("PullRequest", "base")
        stats = await asyncio.to_thread(repo.git.stats, tips[base], tips[head])
        if stats.commits == 0:
            raise custom("PullRequest", f"No commits between {base} and {head}")
        if repo.open_pull_for(head) is not None:
            raise custom("PullRequest", f"A pull request already exists for {repo.owner}:{head}.")
        pull = Pull(
            head=head,
            base=base,
            head_sha=tips[head],
            base_sha=tips[base],
            draft=bool(payload.get("draft")),
            maintainer_can_modify=bool(payload.get("maintainer_can_modify")),
        )
        body = str(payload.get("body") or "")
        issue = self._state.new_issue(
            repo, title=title, body=body, user=self._shapes.bot_login, pull=pull
        )
        # GitHub works mergeability out after answering, so a new pull request says null.
        answer = self._shapes.pull(repo, issue, PullDetail(stats=stats, mergeable=None))
        return web.json_response(answer, status=201, headers={"Location": answer["url"]})

    async def get_pull(self, request: web.Request) -> web.StreamResponse:
        repo, issue, pull = self._ctx.pull(request)
        refresh(repo, await asyncio.to_thread(repo.git.branches))
        base_sha, head_sha = pull.base_sha, pull.head_sha
        if DIFF_MEDIA_TYPE in request.headers.get("Accept", ""):
            diff = await asyncio.to_thread(repo.git.diff, base_sha, head_sha)
            return web.Response(text=diff, content_type=DIFF_MEDIA_TYPE)
        detail = await asyncio.to_thread(pull_detail, repo.git, base_sha, head_sha)
        return web.json_response(self._shapes.pull(repo, issue, detail))

    async def list_reviews(self, request: web.Request) -> web.Response:
        """No one reviews on the stand-in forge: a pull request's reviews are always none."""
        self._ctx.pull(request)  # 404 for a pull request that does not exist
        return paged(request, [])

    async def update_pull(self, request: web.Request) -> web.Response:
        payload = await json_object(request)
        repo, issue, pull = self._ctx.pull(request)
        tips = await asyncio.to_thread(repo.git.branches)
        refresh(repo, tips)
        state = payload.get("state", issue.state)
        if state not in ("open", "closed"):
            raise invalid("PullRequest", "state")
        base = payload.get("base", pull.base)
        if base not in tips:
            raise invalid("PullRequest", "base")
        if state == "open" and issue.state == "closed":
            self._check_reopen(repo, issue, pull, tips)
        issue.title = _text(payload, "title", issue.title)
        issue.body = _text(payload, "body", issue.body)
        if "maintainer_can_modify" in payload:
            pull.maintainer_can_modify = bool(payload["maintainer_can_modify"])
        pull.base, pull.base_sha = base, tips[base]
        self._state.set_state(issue, state)
        issue.updated_at = self._state.clock.now()
        detail = await asyncio.to_thread(pull_detail, repo.git, pull.base_sha, pull.head_sha)
        return web.json_response(self._shapes.pull(repo, issue, detail))

    @staticmethod
    def _check_reopen(repo: ForgeRepo, issue: Issue, pull: Pull, tips: dict[str, str]) -> None:
        if pull.head not in tips:
            raise custom("PullRequest", f"The {pull.head} branch has been deleted.")
        other = repo.open_pull_for(pull.head)
        if other is not None and other is not issue:
            exists = f"A pull request already exists for {repo.owner}:{pull.head}."
            raise custom("PullRequest", exists)


def _text(payload: dict[str, object], key: str, default: str) -> str:
    value = payload.get(key, default)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise invalid("PullRequest", key)
    return value
