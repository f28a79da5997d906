"""`issue_comment`: exact `/bosun` commands from permitted people; all other text is only data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gidgethub import routing, sansio

from bot.commands import Command, Malformed, Verb, help_text, parse_comment
from bot.config.models import Permission, permission_at_least
from bot.config.source import RepoConfig
from bot.errors import PayloadError
from bot.github import Repo
from bot.handlers.context import HandlerContext
from bot.handlers.labels import Target, cancel_active_tasks, queue_request
from bot.publish import Reporter, view_of
from bot.store.tables import Task
from bot.task_states import TaskState
from bot.texts import Phase, status_table

router = routing.Router()


@router.register("issue_comment", action="created")
async def act_on_slash_command(event: sansio.Event, ctx: HandlerContext) -> None:
    data = event.data
    comment = data.get("comment") or {}
    if (data.get("sender") or {}).get("type") == "Bot":
        return  # never answer a bot, Bosun's own comments included
    parsed = parse_comment(str(comment.get("body") or ""))
    if parsed is None:
        return
    github, configs = ctx.require_github()
    repo = Repo.from_payload(data)
    number = _number(data.get("issue") or {})
    comment_id = comment.get("id")
    if not isinstance(comment_id, int):
        raise PayloadError("issue_comment event without a comment id")
    if isinstance(parsed, Malformed) or parsed.verb == Verb.HELP:
        reason = parsed.reason if isinstance(parsed, Malformed) else None
        await github.create_reaction_for_comment(
            repo=repo, comment_id=comment_id, content="confused" if reason else "+1"
        )
        await github.create_comment(repo=repo, issue_number=number, body=help_text(reason))
        return
    default_branch = str((data.get("repository") or {}).get("default_branch") or "main")
    config = await configs.for_repo(repo, default_branch=default_branch)
    sender = str((data.get("sender") or {}).get("login") or "")
    command = Command(parsed.verb, parsed.argument)
    if not await _permitted(ctx, repo, config, command, sender, number):
        await github.create_reaction_for_comment(repo=repo, comment_id=comment_id, content="-1")
        return
    await github.create_reaction_for_comment(repo=repo, comment_id=comment_id, content="+1")
    await COMMANDS[command.verb](Request(ctx, repo, config, command, sender, data))


@dataclass(frozen=True)
class Request:
    """One permitted command: what it says, who said it, where, under which config."""

    ctx: HandlerContext
    repo: Repo
    config: RepoConfig
    command: Command
    sender: str
    data: dict[str, Any]


def required_permission(config: RepoConfig, verb: Verb) -> Permission:
    """Who may give a command: the policy's trigger permission, or ok-to-run's for release."""
    triggers = config.policy.triggers
    if verb == Verb.OK_TO_RUN:
        return triggers.ok_to_run_permission
    if verb == Verb.STATUS:
        return Permission.READ
    return triggers.min_permission


async def _permitted(
    ctx: HandlerContext,
    repo: Repo,
    config: RepoConfig,
    command: Command,
    sender: str,
    number: int,
) -> bool:
    """`run` is always taken (and held when need be); other commands need the permission."""
    if command.verb in (Verb.RUN, Verb.STATUS):
        return True
    github, _ = ctx.require_github()
    required = required_permission(config, command.verb)
    actual = await github.permission_of(repo=repo, username=sender)
    if permission_at_least(actual, required):
        return True
    await github.create_comment(
        repo=repo,
        issue_number=number,
        body=f"@{sender}, `/bosun {command.verb.value}` needs **{required.value}** permission "
        f"or above in {repo.full_name}, and you have **{actual}**.",
    )
    await ctx.audit(
        "command.denied",
        actor=sender,
        repo=repo,
        config_sha=config.sha,
        detail={"command": command.verb.value},
    )
    return False


async def run_task(request: Request) -> None:
    ctx = request.ctx
    repo = request.repo
    config = request.config
    command = request.command
    sender = request.sender
    data = request.data
    target = await _target(ctx, repo, data)
    assert command.argument is not None
    await queue_request(ctx, repo, config, task_name=command.argument, sender=sender, target=target)


async def retry_task(request: Request) -> None:
    """Run the issue's most recent task again, once it is no longer queued or running."""
    ctx = request.ctx
    repo = request.repo
    config = request.config
    sender = request.sender
    data = request.data
    number = _number(data.get("issue") or {})
    tasks = await asyncio.to_thread(ctx.store.tasks_for_issue, repo.full_name, number)
    if not tasks or tasks[-1].state in (TaskState.HELD, TaskState.QUEUED, TaskState.RUNNING):
        github, _ = ctx.require_github()
        await github.create_comment(
            repo=repo,
            issue_number=number,
            body="Nothing to retry: this issue has no finished task, or one is still active.",
        )
        return
    target = await _target(ctx, repo, data)
    await queue_request(
        ctx, repo, config, task_name=tasks[-1].task_name, sender=sender, target=target
    )


async def cancel_tasks(request: Request) -> None:
    """Stop every held, queued or running task of the issue."""
    number = _number(request.data.get("issue") or {})
    await cancel_active_tasks(
        request.ctx,
        request.repo,
        number,
        actor=request.sender,
        reason=f"cancelled by @{request.sender}",
    )


async def show_status(request: Request) -> None:
    ctx = request.ctx
    repo = request.repo
    data = request.data
    github, _ = ctx.require_github()
    number = _number(data.get("issue") or {})
    tasks = await asyncio.to_thread(ctx.store.tasks_for_issue, repo.full_name, number)
    await github.create_comment(repo=repo, issue_number=number, body=status_table(tasks))


async def release_held(request: Request) -> None:
    """`/bosun ok-to-run`: the held requests of this issue are queued, under the releaser's name."""
    ctx = request.ctx
    repo = request.repo
    config = request.config
    sender = request.sender
    data = request.data
    github, _ = ctx.require_github()
    number = _number(data.get("issue") or {})
    released: list[Task] = []
    for task in await asyncio.to_thread(ctx.store.active_tasks, repo.full_name, number):
        if task.state != TaskState.HELD or task.id is None:
            continue
        reason = f"released by @{sender}"
        moved = await asyncio.to_thread(
            ctx.store.transition, task.id, TaskState.HELD, TaskState.QUEUED, reason=reason
        )
        if moved:
            await ctx.audit(
                "task.released",
                actor=sender,
                repo=repo,
                config_sha=config.sha,
                detail={"issue": number},
                task_id=task.id,
            )
            fresh = await asyncio.to_thread(ctx.store.task, task.id) or task
            reporter = Reporter(github=github, store=ctx.store, repo=repo, task=fresh)
            await reporter.status(view_of(fresh, phase=Phase.QUEUED))
            released.append(fresh)
    if released:
        ctx.wake_scheduler()
    else:
        await github.create_comment(
            repo=repo, issue_number=number, body="Nothing is held on this issue."
        )


COMMANDS: dict[Verb, Callable[[Request], Awaitable[None]]] = {
    Verb.RUN: run_task,
    Verb.RETRY: retry_task,
    Verb.CANCEL: cancel_tasks,
    Verb.STATUS: show_status,
    Verb.OK_TO_RUN: release_held,
}


async def _target(ctx: HandlerContext, repo: Repo, data: dict[str, Any]) -> Target:
    """Where a commanded task works: the issue's own branch, or the pull request's head."""
    issue = data.get("issue") or {}
    number = _number(issue)
    default_branch = str((data.get("repository") or {}).get("default_branch") or "main")
    if "pull_request" not in issue:
        return Target(number, False, default_branch, None)
    github, _ = ctx.require_github()
    pull = await github.get_pull(repo=repo, number=number)
    head, base = pull.get("head") or {}, pull.get("base") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    return Target(
        number,
        True,
        str(base.get("ref") or default_branch),
        str(head.get("ref") or ""),
        from_fork=head_repo != repo.full_name,
    )


def _number(item: dict[str, Any]) -> int:
    number = item.get("number")
    if not isinstance(number, int):
        raise PayloadError("comment event without an issue number")
    return number
