"""Waiting tasks, moved on by what happens to the tasks they depend on: queued once the last
dependency's pull request merges, cancelled when one never will. Each says so in its status
comment; `bot/core/dependencies.py` makes the decisions."""

from __future__ import annotations

import asyncio
import contextlib

from bot.config.source import ConfigProvider
from bot.core import dependencies
from bot.core.dependencies import WaitingTask
from bot.core.errors import GitHubError
from bot.core.task_states import TaskState
from bot.execution.publish import Reporter, view_of
from bot.github.client import Repo
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
        moved = await asyncio.to_thread(
            ctx.store.transition, task.task_id, TaskState.WAITING, TaskState.QUEUED, reason=reason
        )
        if not moved:
            continue
        await ctx.audit(
            "task.released",
            actor=actor,
            repo=repo,
            config_sha=merged.config_sha,
            detail={"issue": merged.issue_number, "dependency": merged.task_name},
            task_id=task.task_id,
        )
        await _say(ctx, repo, task.task_id, Phase.QUEUED)
    for task in waiting:
        if task not in ready and merged.task_name in task.depends_on:
            unmet = dependencies.unmet_dependencies(task.depends_on, issue_tasks)
            await _say(ctx, repo, task.task_id, Phase.WAITING, reason=dependencies.named(unmet))


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
        moved = await asyncio.to_thread(
            ctx.store.transition,
            stranded.task.task_id,
            TaskState.WAITING,
            TaskState.CANCELLED,
            reason=reason,
        )
        if not moved:
            continue
        await ctx.audit(
            "task.cancelled",
            actor=actor,
            repo=repo,
            config_sha=ended.config_sha,
            detail={"issue": ended.issue_number, "dependency": stranded.dependency},
            task_id=stranded.task.task_id,
        )
        await _say(ctx, repo, stranded.task.task_id, Phase.CANCELLED)


async def _issue_tasks(ctx: HandlerContext, repo: Repo, issue_number: int) -> list[Task]:
    return await asyncio.to_thread(ctx.store.tasks_for_issue, repo.full_name, issue_number)


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


async def _say(
    ctx: HandlerContext, repo: Repo, task_id: int, phase: Phase, *, reason: str | None = None
) -> None:
    """Update the task's status comment; a GitHub hiccup must not undo the state change."""
    task = await asyncio.to_thread(ctx.store.task, task_id)
    if task is None or ctx.github is None:
        return
    reporter = Reporter(github=ctx.github, store=ctx.store, repo=repo, task=task)
    overrides = {} if reason is None else {"reason": reason}
    with contextlib.suppress(GitHubError):
        await reporter.status(view_of(task, phase=phase, **overrides))
