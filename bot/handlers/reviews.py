"""Reviews of agent pull requests: changes requested re-run the agent, approvals are counted."""

from __future__ import annotations

import asyncio
from typing import Any

from gidgethub import routing, sansio

from bot.config.models import Review
from bot.core.approvals import requesters
from bot.core.errors import PayloadError
from bot.core.task_states import TaskState
from bot.execution.publication import READY_TITLE, check
from bot.github import types as github_types
from bot.github.types import Repo
from bot.store import Publish
from bot.store.tables import Task
from bot.tasks.admit import Target, queue_request
from bot.tasks.approvals import count_approvals
from bot.tasks.context import HandlerContext
from bot.tasks.review_context import review_context

router = routing.Router()


@router.register("pull_request_review", action="submitted")
async def queue_rerun_on_changes_requested(event: sansio.Event, ctx: HandlerContext) -> None:
    """The agent behind the PR runs again on its branch, with the review as quoted context."""
    review = event.data.get("review") or {}
    user = review.get("user") or {}
    if str(review.get("state") or "").lower() != "changes_requested" or user.get("type") == "Bot":
        return
    number = _pull_number(event.data)
    repo = Repo.from_payload(event.data)
    reviewed = _latest_per_task(await _open_tasks(ctx, repo, number))
    if not reviewed:
        return
    github, configs = ctx.require_github()
    default_branch = str((event.data.get("repository") or {}).get("default_branch") or "main")
    config = await configs.for_repo(repo, default_branch=default_branch)
    comments = await github.pulls.list_review_comments(
        repo=repo, number=number, review_id=int(review["id"])
    )
    context = review_context(github_types.Review.from_json(review), comments)
    for task in reviewed:
        target = Target(task.issue_number, task.is_pull_request, task.base_branch, task.branch)
        await queue_request(
            ctx,
            repo,
            config,
            task_name=task.task_name,
            sender=str(user.get("login") or ""),
            target=target,
            review_context=context,
        )


@router.register("pull_request_review", action="submitted")
@router.register("pull_request_review", action="dismissed")
async def recount_approvals_on_review(event: sansio.Event, ctx: HandlerContext) -> None:
    """`bosun/task` on the PR's head commit shows the approvals that count, as they change."""
    number = _pull_number(event.data)
    repo = Repo.from_payload(event.data)
    tasks = await _open_tasks(ctx, repo, number)
    if not tasks:
        return
    github, configs = ctx.require_github()
    head_sha = (await github.pulls.get_pull(repo=repo, number=number)).head_sha
    on_head = [task for task in tasks if task.head_sha == head_sha]
    if not on_head:
        return  # nothing of Bosun's on this commit: someone else pushed after the agent
    default_branch = str((event.data.get("repository") or {}).get("default_branch") or "main")
    config = await configs.for_repo(repo, default_branch=default_branch)
    every = await asyncio.to_thread(ctx.store.tasks.for_pull, repo.full_name, number)
    approvals = await count_approvals(
        github,
        repo=repo,
        number=number,
        head_sha=head_sha,
        excluded=requesters(every),
        review=config.policy.review,
    )
    for task in on_head:
        await _show_approvals(ctx, task, approvals, config.policy.review)


async def _show_approvals(ctx: HandlerContext, task: Task, approvals: int, review: Review) -> None:
    assert task.head_sha is not None and task.id is not None
    shown = check(
        head_sha=task.head_sha,
        conclusion="success",
        title=READY_TITLE,
        approvals=approvals,
        required_approvals=review.required_approvals,
    )
    await asyncio.to_thread(ctx.store.tasks.update, task.id, publish=Publish(check=shown))
    await ctx.publish(task.id)


async def _open_tasks(ctx: HandlerContext, repo: Repo, number: int) -> list[Task]:
    tasks = await asyncio.to_thread(ctx.store.tasks.for_pull, repo.full_name, number)
    return [task for task in tasks if task.state == TaskState.PR_OPEN]


def _latest_per_task(tasks: list[Task]) -> list[Task]:
    """One task per task name: its latest run is the one the review answers."""
    return list({task.task_name: task for task in tasks}.values())


def _pull_number(data: dict[str, Any]) -> int:
    number = (data.get("pull_request") or {}).get("number")
    if not isinstance(number, int):
        raise PayloadError("pull_request_review event without a pull request number")
    return number
