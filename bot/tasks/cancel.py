"""Cancelling an issue's tasks: queued ones at once, running ones asked to stop; each says so."""

from __future__ import annotations

import asyncio

from bot.core.task_states import TaskState
from bot.execution.publication import status
from bot.github.types import Repo
from bot.store.tables import Task
from bot.tasks.context import HandlerContext
from bot.texts.status import Phase


async def cancel_task(
    ctx: HandlerContext,
    repo: Repo,
    number: int,
    task_name: str,
    *,
    actor: str,
    reason: str,
    config_sha: str | None,
) -> Task | None:
    """Cancel the issue's active `task_name`: at once when it is not running (its status
    comment says so), else its worker is asked to stop and says so when it has. None when
    there was nothing to cancel."""
    audit = ctx.entry(
        "task.cancelled",  # the store writes task.cancel_requested for a running task
        actor=actor,
        repo=repo,
        config_sha=config_sha,
        detail={"issue": number, "task": task_name},
    )
    task = await asyncio.to_thread(
        ctx.store.tasks.request_cancel,
        repo.full_name,
        number,
        task_name,
        reason=reason,
        audit=audit,
        publish=status(Phase.CANCELLED),
    )
    if task is not None and task.state == TaskState.CANCELLED:
        await ctx.publish(task.id)
    return task


async def cancel_active_tasks(
    ctx: HandlerContext, repo: Repo, number: int, *, actor: str, reason: str
) -> None:
    """Cancel an issue's held, waiting and queued tasks, ask its running ones to stop; say so.

    Every task of the issue goes, so no waiting task is left behind by a dependency."""
    for active in await asyncio.to_thread(ctx.store.tasks.active_for_issue, repo.full_name, number):
        await cancel_task(
            ctx,
            repo,
            number,
            active.task_name,
            actor=actor,
            reason=reason,
            config_sha=active.config_sha,
        )
