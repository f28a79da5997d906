"""Auto-merge of an agent's pull request, and its branch deleted when it is closed unmerged.

Bosun merges only under `review.auto_merge`, only the commit the agent pushed, only once
enough people approved that commit and every check and status on it passed. `merge_verdict`
decides from plain facts; the handlers gather them when something that could change the
answer happens: an approval, a finished check run or suite, a commit status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from gidgethub import routing, sansio

from bot.config.models import Review
from bot.core.approvals import requesters
from bot.core.errors import GitHubError, GitHubRateLimited, GitHubTransientError, PayloadError
from bot.core.task_states import TaskState
from bot.github.client import GitHubClient
from bot.github.types import MergeMethod, Repo
from bot.store.tables import Task
from bot.tasks.approvals import count_approvals
from bot.tasks.context import HandlerContext

log = structlog.get_logger("bosun.merge")
router = routing.Router()

ACTOR = "bosun"
AGENT_BRANCH_PREFIX = "bosun/"
# https://docs.github.com/en/rest/checks/runs: these conclusions do not block a merge.
PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
# GitHub's refusals of a merge: 403 not allowed (branch protection, permissions), 405 not
# mergeable, 409 head moved past the sha sent, 422 invalid. Anything else is an error.
MERGE_REFUSALS = frozenset({403, 405, 409, 422})


class CheckRunState(NamedTuple):
    name: str
    status: str
    conclusion: str | None


@dataclass(frozen=True, kw_only=True)
class MergeFacts:
    """What the merge decision rests on: the policy, the pull request, its reviews and checks."""

    auto_merge: bool
    required_approvals: int
    approvals: int
    pull_open: bool
    draft: bool
    pull_head_sha: str
    agent_head_sha: str
    agent_working: bool
    check_runs: Sequence[CheckRunState]
    status_state: str
    status_count: int


@dataclass(frozen=True)
class Verdict:
    merge: bool
    reason: str


def merge_verdict(facts: MergeFacts) -> Verdict:
    """Whether Bosun may merge now, and if not, the first reason why not."""
    if not facts.auto_merge:
        return Verdict(False, "review.auto_merge is off")
    if not facts.pull_open:
        return Verdict(False, "the pull request is not open")
    if facts.draft:
        return Verdict(False, "the pull request is a draft")
    if facts.pull_head_sha != facts.agent_head_sha:
        return Verdict(False, f"the head moved to {facts.pull_head_sha[:7]} after the agent's push")
    if facts.agent_working:
        return Verdict(False, "an agent is still working on the branch")
    needed = max(1, facts.required_approvals)  # never without a person's approval
    if facts.approvals < needed:
        return Verdict(False, f"approvals: {facts.approvals} of {needed} required")
    for run in facts.check_runs:
        if run.status != "completed":
            return Verdict(False, f"check run {run.name} is {run.status}")
        if run.conclusion not in PASSING_CONCLUSIONS:
            return Verdict(False, f"check run {run.name} concluded {run.conclusion}")
    # With no statuses at all GitHub reports `pending`: nothing is waiting, so that is green.
    if facts.status_count and facts.status_state != "success":
        return Verdict(False, f"the combined commit status is {facts.status_state}")
    return Verdict(True, "approved, and every check passed")


# Triggers


@router.register("pull_request_review", action="submitted")
async def merge_on_approval(event: sansio.Event, ctx: HandlerContext) -> None:
    """An approval may be the last one the pull request was waiting for."""
    review = event.data.get("review") or {}
    if str(review.get("state") or "").lower() != "approved":
        return
    number = (event.data.get("pull_request") or {}).get("number")
    if not isinstance(number, int):
        raise PayloadError("pull_request_review event without a pull request number")
    await merge_if_ready(ctx, Repo.from_payload(event.data), number, _default_branch(event.data))


@router.register("check_run", action="completed")
async def merge_on_check_run(event: sansio.Event, ctx: HandlerContext) -> None:
    """A passing check run may be the last one the agent's commit was waiting for."""
    run = event.data.get("check_run") or {}
    if run.get("conclusion") in PASSING_CONCLUSIONS:
        await _merge_pulls_at(ctx, event.data, str(run.get("head_sha") or ""))


@router.register("check_suite", action="completed")
async def merge_on_check_suite(event: sansio.Event, ctx: HandlerContext) -> None:
    """A passing check suite may be the last one the agent's commit was waiting for."""
    suite = event.data.get("check_suite") or {}
    if suite.get("conclusion") in PASSING_CONCLUSIONS:
        await _merge_pulls_at(ctx, event.data, str(suite.get("head_sha") or ""))


@router.register("status")
async def merge_on_status(event: sansio.Event, ctx: HandlerContext) -> None:
    """A commit status turning green may complete the combined status."""
    if event.data.get("state") == "success":
        await _merge_pulls_at(ctx, event.data, str(event.data.get("sha") or ""))


async def _merge_pulls_at(ctx: HandlerContext, data: Mapping[str, Any], head_sha: str) -> None:
    """Each open agent pull request whose head is `head_sha`, merged if it is ready."""
    if not head_sha:
        raise PayloadError("check or status event without a commit sha")
    repo = Repo.from_payload(data)
    tasks = await asyncio.to_thread(ctx.store.tasks.open_pulls_at, repo.full_name, head_sha)
    numbers = sorted({task.pr_number for task in tasks if task.pr_number is not None})
    for number in numbers:
        await merge_if_ready(ctx, repo, number, _default_branch(data))


# Merging


async def merge_if_ready(ctx: HandlerContext, repo: Repo, number: int, default_branch: str) -> None:
    """Merge the agent's pull request `number` if the policy allows it and it is ready."""
    tasks = await asyncio.to_thread(ctx.store.tasks.for_pull, repo.full_name, number)
    pushed = [t for t in tasks if t.state == TaskState.PR_OPEN and t.head_sha]
    if not pushed or not any(_opened_by_agent(task) for task in tasks):
        return  # not a pull request Bosun opened, or none of its work is waiting on it
    github, configs = ctx.require_github()
    config = await configs.for_repo(repo, default_branch=default_branch)
    review = config.policy.review
    if not review.auto_merge:
        return
    latest = pushed[-1]  # the agent's most recent push to this pull request
    assert latest.head_sha is not None
    facts = await _gather(ctx, github, repo, number, review, tasks=tasks, head_sha=latest.head_sha)
    verdict = merge_verdict(facts)
    bound = log.bind(repo=repo.full_name, pr=number, head_sha=latest.head_sha)
    if not verdict.merge:
        bound.info("auto_merge.waiting", reason=verdict.reason)
        return
    method = MergeMethod(review.merge_method)
    detail: dict[str, Any] = {"pr": number, "sha": latest.head_sha, "merge_method": method.value}
    try:
        merged = await github.pulls.merge_pull(
            repo=repo, number=number, sha=latest.head_sha, merge_method=method
        )
    except GitHubError as exc:
        if not _refusal(exc):
            raise
        bound.warning("auto_merge.refused", status_code=exc.status_code, error=str(exc))
        refused = detail | {"status_code": exc.status_code, "reason": str(exc)}
        await ctx.audit(
            "task.auto_merge_refused",
            actor=ACTOR,
            repo=repo,
            config_sha=config.sha,
            detail=refused,
            task_id=latest.id,
        )
        return
    bound.info("auto_merge.merged", merge_method=method.value)
    await ctx.audit(
        "task.auto_merged",
        actor=ACTOR,
        repo=repo,
        config_sha=config.sha,
        detail=detail | {"merge_commit_sha": merged.sha},
        task_id=latest.id,
    )


async def _gather(
    ctx: HandlerContext,
    github: GitHubClient,
    repo: Repo,
    number: int,
    review: Review,
    *,
    tasks: Sequence[Task],
    head_sha: str,
) -> MergeFacts:
    pull = await github.pulls.get_pull(repo=repo, number=number)
    approvals = await count_approvals(
        github,
        repo=repo,
        number=number,
        head_sha=head_sha,
        excluded=requesters(tasks),
        review=review,
    )
    runs = await github.checks.list_check_runs(repo=repo, ref=head_sha)
    status = await github.repos.combined_status(repo=repo, ref=head_sha)
    issues = {task.issue_number for task in tasks}
    return MergeFacts(
        auto_merge=review.auto_merge,
        required_approvals=review.required_approvals,
        approvals=approvals,
        pull_open=pull.open,
        draft=pull.draft,
        pull_head_sha=pull.head_sha,
        agent_head_sha=head_sha,
        agent_working=await _agent_working(ctx, repo, issues, pull.head_ref),
        check_runs=[CheckRunState(run.name, run.status, run.conclusion) for run in runs],
        status_state=status.state,
        status_count=status.total_count,
    )


async def _agent_working(
    ctx: HandlerContext, repo: Repo, issues: Iterable[int], branch: str
) -> bool:
    """Whether a task is held, queued or running on `branch`: it will push again."""
    for issue in issues:
        active = await asyncio.to_thread(ctx.store.tasks.active_for_issue, repo.full_name, issue)
        if any(task.branch == branch for task in active):
            return True
    return False


def _refusal(exc: GitHubError) -> bool:
    if isinstance(exc, (GitHubTransientError, GitHubRateLimited)):
        return False  # worth retrying: the delivery is handled again later
    return exc.status_code in MERGE_REFUSALS


# Branches of closed pull requests


@router.register("pull_request", action="closed")
async def delete_agent_branch_of_unmerged_pull(event: sansio.Event, ctx: HandlerContext) -> None:
    """Closed unmerged: the agent's own `bosun/` branch goes, unless the policy keeps it.

    A branch of a person's pull request, or of a fork, is never touched; nor is one an
    agent is still working on.
    """
    pull = event.data.get("pull_request") or {}
    number = pull.get("number")
    if not isinstance(number, int):
        raise PayloadError("pull_request event without a number")
    if pull.get("merged"):
        return
    repo = Repo.from_payload(event.data)
    head = pull.get("head") or {}
    branch = str(head.get("ref") or "")
    if (head.get("repo") or {}).get("full_name") != repo.full_name:
        return
    tasks = await asyncio.to_thread(ctx.store.tasks.for_pull, repo.full_name, number)
    owners = [task for task in tasks if _opened_by_agent(task) and task.branch == branch]
    if not owners:
        return
    if await _agent_working(ctx, repo, {task.issue_number for task in owners}, branch):
        return
    github, configs = ctx.require_github()
    config = await configs.for_repo(repo, default_branch=_default_branch(event.data))
    if not config.policy.review.delete_branch_on_close:
        return
    if not await github.repos.delete_branch(repo=repo, branch=branch):
        return  # already gone (deleted by hand, or by a rollback)
    await ctx.audit(
        "branch.deleted",
        actor=ACTOR,
        repo=repo,
        config_sha=config.sha,
        detail={"branch": branch, "pr": number},
        task_id=owners[-1].id,
    )


def _opened_by_agent(task: Task) -> bool:
    """The task worked on a branch Bosun made for it, not on a person's pull request."""
    return not task.is_pull_request and task.branch.startswith(AGENT_BRANCH_PREFIX)


def _default_branch(data: Mapping[str, Any]) -> str:
    return str((data.get("repository") or {}).get("default_branch") or "main")
