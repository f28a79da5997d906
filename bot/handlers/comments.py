"""`issue_comment`: exact `/bosun` commands from permitted people; all other text is only data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gidgethub import routing, sansio

from bot.config.models import Permission, permission_at_least
from bot.config.source import RepoConfig
from bot.core.commands import Command, Malformed, Verb, help_text, parse_comment, without_command
from bot.core.dependencies import named
from bot.core.errors import PayloadError
from bot.core.task_states import ACTIVE_TASK_STATES, TaskState
from bot.execution.failure_actions import hand_over
from bot.execution.publication import status
from bot.github.types import Repo
from bot.store.tables import Task
from bot.tasks.admit import Target, queue_request
from bot.tasks.cancel import cancel_active_tasks
from bot.tasks.context import HandlerContext
from bot.tasks.review_context import REVIEW_CONTEXT_LIMIT, review_context
from bot.tasks.waiting import depends_on_of, unmet_for_issue
from bot.texts.markers import marker
from bot.texts.status import Phase, status_table

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
        await github.issues.create_reaction_for_comment(
            repo=repo, comment_id=comment_id, content="confused" if reason else "+1"
        )
        await github.issues.create_comment(
            repo=repo,
            issue_number=number,
            body=help_text(reason),
            marker=marker("help", f"comment={comment_id}"),
        )
        return
    default_branch = str((data.get("repository") or {}).get("default_branch") or "main")
    config = await configs.for_repo(repo, default_branch=default_branch)
    sender = str((data.get("sender") or {}).get("login") or "")
    command = Command(parsed.verb, parsed.argument)
    if not await _permitted(ctx, repo, config, command, sender, number, comment_id):
        await github.issues.create_reaction_for_comment(
            repo=repo, comment_id=comment_id, content="-1"
        )
        return
    await github.issues.create_reaction_for_comment(repo=repo, comment_id=comment_id, content="+1")
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
    comment_id: int,
) -> bool:
    """`run` is always taken (and held when need be); other commands need the permission."""
    if command.verb in (Verb.RUN, Verb.STATUS):
        return True
    github, _ = ctx.require_github()
    required = required_permission(config, command.verb)
    actual = await github.repos.permission_of(repo=repo, username=sender)
    if permission_at_least(actual, required):
        return True
    await github.issues.create_comment(
        repo=repo,
        issue_number=number,
        body=f"@{sender}, `/bosun {command.verb.value}` needs **{required.value}** permission "
        f"or above in {repo.full_name}, and you have **{actual}**.",
        marker=marker("denied", f"comment={comment_id}"),
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
    """Run the last task again once it has ended, on its branch; on a pull request, with the
    latest "changes requested" review and the rest of the retry comment as quoted context."""
    last = await _last_finished_task(request, verb="retry")
    if last is None:
        return
    context = await _retry_context(request)
    await queue_request(
        request.ctx,
        request.repo,
        request.config,
        task_name=last.task_name,
        sender=request.sender,
        target=_target_of(last),
        review_context=context,
    )


async def escalate_task(request: Request) -> None:
    """The next rung of the policy's escalation ladder, now: one run on the escalation tier
    if the last run was not on it, else hand the task to people (label and mention)."""
    last = await _last_finished_task(request, verb="escalate")
    if last is None:
        return
    failure = request.config.policy.failure
    tier = failure.escalate.tier
    if tier is not None and last.tier != tier:
        await queue_request(
            request.ctx,
            request.repo,
            request.config,
            task_name=last.task_name,
            sender=request.sender,
            target=_target_of(last),
            review_context=last.review_context,
            tier=tier,
        )
        return
    github, _ = request.ctx.require_github()
    reason = f"{request.sender} asked for people to take over (`/bosun escalate`)"
    key = f"delivery={request.ctx.delivery_id}"
    await hand_over(github, last, failure.escalate, reason=reason, key=key)
    await request.ctx.audit(
        "task.hand_over",
        actor=request.sender,
        repo=request.repo,
        config_sha=request.config.sha,
        detail={"label": failure.escalate.label, "mention": list(failure.escalate.mention)},
        task_id=last.id,
    )


async def _last_finished_task(request: Request, *, verb: str) -> Task | None:
    """The most recent task of this issue, or of this pull request (its own tasks and those
    of the issue whose agent opened it); None, with a reply, when it is still active."""
    ctx, repo = request.ctx, request.repo
    number = _number(request.data.get("issue") or {})
    tasks = await asyncio.to_thread(ctx.store.tasks.for_issue, repo.full_name, number)
    if "pull_request" in (request.data.get("issue") or {}):
        tasks += await asyncio.to_thread(ctx.store.tasks.for_pull, repo.full_name, number)
    # A waiting task has not run: what to act on is what it waits on, such as a failed fix.
    by_id = {task.id: task for task in tasks if task.state != TaskState.WAITING}
    ordered = [by_id[key] for key in sorted(key for key in by_id if key is not None)]
    if ordered and ordered[-1].state not in ACTIVE_TASK_STATES:
        return ordered[-1]
    github, _ = ctx.require_github()
    await github.issues.create_comment(
        repo=repo,
        issue_number=number,
        body=f"Nothing to {verb}: no task has finished here, or one is still active "
        "(`/bosun cancel` stops it).",
        marker=marker("nothing", f"comment={_comment_id(request.data)}"),
    )
    return None


def _target_of(task: Task) -> Target:
    """Where a task ran: its issue or pull request, its branch."""
    return Target(task.issue_number, task.is_pull_request, task.base_branch, task.branch)


async def _retry_context(request: Request) -> str | None:
    """What people asked for with a retry: the text around the command, and on a pull request
    the latest "changes requested" review with its inline comments."""
    parts = []
    extra = without_command(str((request.data.get("comment") or {}).get("body") or ""))
    if extra:
        parts.append(f"Comment by @{request.sender} with the retry:\n{extra}")
    issue = request.data.get("issue") or {}
    if "pull_request" in issue:
        github, _ = request.ctx.require_github()
        number = _number(issue)
        reviews = await github.pulls.list_reviews(repo=request.repo, number=number)
        asked = [
            review
            for review in reviews
            if review.state == "CHANGES_REQUESTED" and not review.author.is_bot
        ]
        if asked:
            latest = asked[-1]
            comments = await github.pulls.list_review_comments(
                repo=request.repo, number=number, review_id=latest.id
            )
            parts.append(review_context(latest, comments))
    return "\n\n".join(parts)[:REVIEW_CONTEXT_LIMIT] or None


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
    tasks = await asyncio.to_thread(ctx.store.tasks.for_issue, repo.full_name, number)
    await github.issues.create_comment(
        repo=repo,
        issue_number=number,
        body=status_table(tasks),
        marker=marker("status", f"comment={_comment_id(data)}"),
    )


async def release_held(request: Request) -> None:
    """`/bosun ok-to-run`: the held requests of this issue are queued, under the releaser's name;
    those whose dependencies have not merged yet go on to wait for them."""
    ctx = request.ctx
    repo = request.repo
    config = request.config
    sender = request.sender
    data = request.data
    github, configs = ctx.require_github()
    number = _number(data.get("issue") or {})
    released: list[Task] = []
    for task in await asyncio.to_thread(ctx.store.tasks.active_for_issue, repo.full_name, number):
        if task.state != TaskState.HELD or task.id is None:
            continue
        depends_on = await depends_on_of(configs, repo, task)
        unmet = await unmet_for_issue(ctx, repo, number, depends_on)
        target = TaskState.WAITING if unmet else TaskState.QUEUED
        reason = f"released by @{sender}"
        audit = ctx.entry(
            "task.released",
            actor=sender,
            repo=repo,
            config_sha=config.sha,
            detail={"issue": number, **({"waits_for": unmet} if unmet else {})},
        )
        shown = status(Phase.WAITING, reason=named(unmet)) if unmet else status(Phase.QUEUED)
        moved = await asyncio.to_thread(
            ctx.store.tasks.transition,
            task.id,
            TaskState.HELD,
            target,
            audit=audit,
            publish=shown,
            reason=reason,
        )
        if moved:
            await ctx.publish(task.id)
            fresh = await asyncio.to_thread(ctx.store.tasks.get, task.id)
            released.append(fresh or task)
    if any(task.state == TaskState.QUEUED for task in released):
        ctx.wake_scheduler()
    if not released:
        await github.issues.create_comment(
            repo=repo,
            issue_number=number,
            body="Nothing is held on this issue.",
            marker=marker("nothing", f"comment={_comment_id(data)}"),
        )


COMMANDS: dict[Verb, Callable[[Request], Awaitable[None]]] = {
    Verb.RUN: run_task,
    Verb.RETRY: retry_task,
    Verb.CANCEL: cancel_tasks,
    Verb.STATUS: show_status,
    Verb.OK_TO_RUN: release_held,
    Verb.ESCALATE: escalate_task,
}


async def _target(ctx: HandlerContext, repo: Repo, data: dict[str, Any]) -> Target:
    """Where a commanded task works: the issue's own branch, or the pull request's head."""
    issue = data.get("issue") or {}
    number = _number(issue)
    default_branch = str((data.get("repository") or {}).get("default_branch") or "main")
    if "pull_request" not in issue:
        return Target(number, False, default_branch, None)
    github, _ = ctx.require_github()
    pull = await github.pulls.get_pull(repo=repo, number=number)
    return Target(
        number, True, pull.base_ref, pull.head_ref, from_fork=pull.head_repo != repo.full_name
    )


def _number(item: dict[str, Any]) -> int:
    number = item.get("number")
    if not isinstance(number, int):
        raise PayloadError("comment event without an issue number")
    return number


def _comment_id(data: dict[str, Any]) -> int:
    """The command's comment: one reply per command, found again by it."""
    return int((data.get("comment") or {}).get("id") or 0)
