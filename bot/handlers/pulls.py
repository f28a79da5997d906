"""Pull requests and issues closing: merged is done, closed unmerged is abandoned, tasks stop."""

from __future__ import annotations

import asyncio

from gidgethub import routing, sansio

from bot.core.errors import PayloadError
from bot.core.task_states import TaskState
from bot.execution.publication import status
from bot.github.types import Repo
from bot.store.tables import Task
from bot.tasks.cancel import cancel_active_tasks
from bot.tasks.context import HandlerContext
from bot.tasks.waiting import cancel_stranded_tasks, release_ready_tasks
from bot.texts.status import Phase

router = routing.Router()


@router.register("pull_request", action="closed")
async def finish_tasks_of_closed_pull_request(event: sansio.Event, ctx: HandlerContext) -> None:
    """Merged: the tasks behind the PR are done, and the tasks waiting on them may go.
    Closed unmerged: they are abandoned, and the tasks waiting on them cancelled."""
    pull = event.data.get("pull_request") or {}
    number = pull.get("number")
    if not isinstance(number, int):
        raise PayloadError("pull_request event without a number")
    repo = Repo.from_payload(event.data)
    merged = bool(pull.get("merged"))
    target = TaskState.DONE if merged else TaskState.ABANDONED
    sender = str((event.data.get("sender") or {}).get("login") or "")
    reason = f"pull request #{number} {'merged' if merged else 'closed'} by @{sender}"
    tasks = await asyncio.to_thread(ctx.store.tasks.for_pull, repo.full_name, number)
    for task in tasks:
        if task.id is None or task.state not in (TaskState.PR_OPEN, target):
            continue
        if task.state == target:
            # An earlier attempt at this delivery got this far and failed after: finish the
            # waiting tasks' part, which is safe to repeat.
            await _move_waiting_tasks(ctx, repo, task, merged=merged, actor=sender, why=reason)
            continue
        ended = ctx.entry(
            f"task.{target.value}",
            actor=sender,
            repo=repo,
            config_sha=task.config_sha,
            detail={"pr": number},
        )
        moved = await asyncio.to_thread(
            ctx.store.tasks.transition,
            task.id,
            TaskState.PR_OPEN,
            target,
            audit=ended,
            publish=status(Phase.DONE if merged else Phase.ABANDONED),
            reason=reason,
        )
        if not moved:
            continue
        await ctx.publish(task.id)
        await _move_waiting_tasks(ctx, repo, task, merged=merged, actor=sender, why=reason)
    ctx.wake_scheduler()


async def _move_waiting_tasks(
    ctx: HandlerContext, repo: Repo, ended: Task, *, merged: bool, actor: str, why: str
) -> None:
    """Merged: release what waited on `ended`. Closed unmerged: cancel what waited on it."""
    if merged:
        await release_ready_tasks(ctx, repo, ended, actor=actor)
    else:
        await cancel_stranded_tasks(ctx, repo, ended, actor=actor, how=f"was abandoned ({why})")


@router.register("issues", action="closed")
async def cancel_tasks_of_closed_issue(event: sansio.Event, ctx: HandlerContext) -> None:
    """Closing an issue stops its held, waiting, queued and running tasks."""
    issue = event.data.get("issue") or {}
    number = issue.get("number")
    if not isinstance(number, int):
        raise PayloadError("issues event without a number")
    repo = Repo.from_payload(event.data)
    sender = str((event.data.get("sender") or {}).get("login") or "")
    await cancel_active_tasks(ctx, repo, number, actor=sender, reason=f"issue closed by @{sender}")
