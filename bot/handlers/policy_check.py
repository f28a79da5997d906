"""`bosun/policy` on pull requests that change `.bosun/`: problems at file:line:col, the diff
of the effective policy, and what the change would do to the tasks queued and running now."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.config.source import is_config_path
from bot.core.errors import PayloadError
from bot.github.types import Repo
from bot.tasks.context import HandlerContext
from bot.tasks.policy_check import post_policy_check, review_change

router = routing.Router()


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
async def check_policy_on_pull_request(event: sansio.Event, ctx: HandlerContext) -> None:
    pull = event.data.get("pull_request") or {}
    number, head_sha = pull.get("number"), (pull.get("head") or {}).get("sha")
    if not isinstance(number, int) or not isinstance(head_sha, str):
        raise PayloadError("pull_request event without a number or head sha")
    if pull.get("state") == "closed":
        return
    github, _ = ctx.require_github()
    repo = Repo.from_payload(event.data)
    changed = await github.pulls.list_pull_files(repo=repo, number=number)
    if not any(is_config_path(path) for path in changed):
        return
    default_branch = str((event.data.get("repository") or {}).get("default_branch") or "main")
    base_sha = await github.repos.get_branch_sha(repo=repo, branch=default_branch)
    verdict = await review_change(ctx, repo, base_sha=base_sha, head_sha=head_sha)
    await post_policy_check(github, repo, head_sha=head_sha, verdict=verdict)
