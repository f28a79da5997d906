"""Cancelling an issue's tasks: queued ones at once, running ones asked to stop; each says so."""

from __future__ import annotations

import asyncio
import contextlib

from bot.core.errors import GitHubError
from bot.core.task_states import TaskState
from bot.execution.publish import Reporter, view_of
from bot.github.client import Repo
from bot.tasks.context import HandlerContext
from bot.texts.status import Phase


async def cancel_active_tasks(
    ctx: HandlerContext, repo: Repo, number: int, *, actor: str, reason: str
) -> None:
    """Cancel an issue's held, waiting and queued tasks, ask its running ones to stop; say so.

    Every task of the issue goes, so no waiting task is left behind by a dependency."""
    for active in await asyncio.to_thread(ctx.store.active_tasks, repo.full_name, number):
        task = await asyncio.to_thread(
            ctx.store.request_cancel, repo.full_name, number, active.task_name, reason=reason
        )
        if task is None:
            continue
        cancelled = task.state == TaskState.CANCELLED
        await ctx.audit(
            "task.cancelled" if cancelled else "task.cancel_requested",
            actor=actor,
            repo=repo,
            config_sha=task.config_sha,
            detail={"issue": number},
            task_id=task.id,
        )
        if cancelled and ctx.github is not None:
            reporter = Reporter(github=ctx.github, store=ctx.store, repo=repo, task=task)
            with contextlib.suppress(GitHubError):
                await reporter.status(view_of(task, phase=Phase.CANCELLED))
