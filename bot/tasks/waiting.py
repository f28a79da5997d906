"""Waiting tasks, moved on by what happens to the tasks they depend on: queued once the last
dependency's pull request merges, cancelled when one never will. Each says so in its status
comment; `bot/core/dependencies.py` makes the decisions."""

from __future__ import annotations

import asyncio

from bot.config.source import ConfigProvider
from bot.core import dependencies
from bot.core.dependencies import WaitingTask
from bot.core.task_states import TaskState
from bot.execution.publication import status
from bot.github.types import Repo
from bot.store.tables import Task
from bot.tasks.context import HandlerContext
from bot.texts.status import Phase


async def depends_on_of(configs: ConfigProvider, repo: Repo, task: Task) -> tuple[str, ...]:
    """The tasks `task` depends on, as the config commit it was triggered under declares."""
    if not task.config_sha:
        return ()
    spec = (await configs.at_commit(repo, task.config_sha)).tasks.get(task.task_name)
    return tuple(spec.depends_on) if spec is not None else ()


async def unmet_for_issue(
    ctx: HandlerContext, repo: Repo, issue_number: int, depends_on: tuple[str, ...]
) -> list[str]:
    """Which of `depends_on` have no merged task on the issue yet."""
    if not depends_on:
        return []
    issue_tasks = await _issue_tasks(ctx, repo, issue_number)
    return dependencies.unmet_dependencies(depends_on, issue_tasks)


async def release_ready_tasks(ctx: HandlerContext, repo: Repo, merged: Task, *, actor: str) -> None:
    """`merged`'s pull request merged: queue the issue's waiting tasks whose dependencies have
    all merged now, and tell the others that still wait on more what is left."""
    issue_tasks = await _issue_tasks(ctx, repo, merged.issue_number)
    waiting = await _waiting(ctx, repo, issue_tasks)
    ready = dependencies.ready_to_release(waiting, issue_tasks)
    reason = f"`{merged.task_name}`'s pull request #{merged.pr_number} merged"
    for task in ready:
        released = ctx.entry(
            "task.released",
            actor=actor,
            repo=repo,
            config_sha=merged.config_sha,
            detail={"issue": merged.issue_number, "dependency": merged.task_name},
        )
        if await asyncio.to_thread(
            ctx.store.tasks.transition,
            task.task_id,
            TaskState.WAITING,
            TaskState.QUEUED,
            audit=released,
            publish=status(Phase.QUEUED),
            reason=reason,
        ):
            await ctx.publish(task.task_id)
    for task in waiting:
        if task not in ready and merged.task_name in task.depends_on:
            unmet = dependencies.unmet_dependencies(task.depends_on, issue_tasks)
            shown = status(Phase.WAITING, reason=dependencies.named(unmet))
            await asyncio.to_thread(ctx.store.tasks.update, task.task_id, publish=shown)
            await ctx.publish(task.task_id)


async def cancel_stranded_tasks(
    ctx: HandlerContext, repo: Repo, ended: Task, *, actor: str, how: str
) -> None:
    """`ended` will never merge (`how`: what became of it): cancel the issue's waiting tasks
    left without it, each reason naming the dependency it lost."""
    issue_tasks = await _issue_tasks(ctx, repo, ended.issue_number)
    waiting = await _waiting(ctx, repo, issue_tasks)
    for stranded in dependencies.stranded_by(ended, waiting, issue_tasks):
        what = how if stranded.dependency == ended.task_name else "was cancelled"
        reason = f"its dependency `{stranded.dependency}` {what}"
        cancelled = ctx.entry(
            "task.cancelled",
            actor=actor,
            repo=repo,
            config_sha=ended.config_sha,
            detail={"issue": ended.issue_number, "dependency": stranded.dependency},
        )
        if await asyncio.to_thread(
            ctx.store.tasks.transition,
            stranded.task.task_id,
            TaskState.WAITING,
            TaskState.CANCELLED,
            audit=cancelled,
            publish=status(Phase.CANCELLED),
            reason=reason,
        ):
            await ctx.publish(stranded.task.task_id)


async def _issue_tasks(ctx: HandlerContext, repo: Repo, issue_number: int) -> list[Task]:
    return await asyncio.to_thread(ctx.store.tasks.for_issue, repo.full_name, issue_number)


async def _waiting(ctx: HandlerContext, repo: Repo, issue_tasks: list[Task]) -> list[WaitingTask]:
    """The issue's waiting tasks with their dependencies; none without the App's config
    access, since nothing can be decided about them then."""
    if ctx.configs is None:
        return []
    return [
        WaitingTask(task.id, task.task_name, await depends_on_of(ctx.configs, repo, task))
        for task in issue_tasks
        if task.state == TaskState.WAITING and task.id is not None
    ]
