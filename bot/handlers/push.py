"""Pushes to a default branch that change `.bosun/`: a valid config becomes the last good
one; a broken one is refused where its author sees it, and the last good one keeps serving."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gidgethub import routing, sansio

from bot.config.source import is_config_path, is_org_repo
from bot.github.types import Repo
from bot.tasks.context import HandlerContext
from bot.tasks.policy_check import PolicyVerdict, post_policy_check, problem_section

router = routing.Router()

ACCEPTED = "config.accepted"
REJECTED = "config.rejected"


@router.register("push")
async def reload_config_on_push(event: sansio.Event, ctx: HandlerContext) -> None:
    data = event.data
    sha = data.get("after")
    if data.get("deleted") or not isinstance(sha, str) or not _to_default_branch(data):
        return
    if not any(is_config_path(path) for path in _changed_paths(data)):
        return
    github, configs = ctx.require_github()
    repo = Repo.from_payload(data)
    effective = await configs.validate(repo, sha)
    actor = str((data.get("pusher") or {}).get("name") or (data.get("sender") or {}).get("login"))
    problems = [str(problem) for problem in effective.problems]
    if not problems:
        await configs.accept(repo, sha)
        await _audit(ctx, repo, sha, actor, ACCEPTED, {"org": is_org_repo(repo)})
        return
    serving = await configs.last_good_sha(repo)
    verdict = PolicyVerdict(
        title=f"Config refused: {len(problems)} problem{'s' * (len(problems) != 1)}",
        summary=_refusal(serving) + "\n\n" + problem_section(effective.problems),
        problems=effective.problems,
    )
    check_run_id = await post_policy_check(github, repo, head_sha=sha, verdict=verdict)
    detail = {
        "problems": problems,
        "serving_sha": serving,
        "check_run_id": check_run_id,
        "org": is_org_repo(repo),
    }
    await _audit(ctx, repo, sha, actor, REJECTED, detail)


def _refusal(serving: str | None) -> str:
    if serving is None:
        return (
            "Bosun refused this commit's `.bosun/` config and has no earlier good one: "
            "the valid parts serve, and tasks that need the broken ones are refused."
        )
    return (
        "Bosun refused this commit's `.bosun/` config and keeps serving the last good one, "
        f"from commit {serving[:12]}, until a commit fixes the problems below."
    )


def _to_default_branch(data: Mapping[str, Any]) -> bool:
    repository = data.get("repository") or {}
    branch = repository.get("default_branch") or repository.get("master_branch")
    return bool(branch) and data.get("ref") == f"refs/heads/{branch}"


def _changed_paths(data: Mapping[str, Any]) -> Iterator[str]:
    """Every path the push's commits add, modify or remove, as the payload lists them."""
    for commit in data.get("commits") or []:
        for key in ("added", "modified", "removed"):
            yield from (str(path) for path in commit.get(key) or [])


async def _audit(
    ctx: HandlerContext, repo: Repo, sha: str, actor: str, action: str, detail: dict[str, Any]
) -> None:
    await ctx.audit(action, actor=actor, repo=repo, config_sha=sha, detail={"sha": sha, **detail})
