"""Trigger labels on issues and pull requests: adding one queues a task, removing it cancels."""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from bot.core.errors import PayloadError
from bot.github.types import Repo
from bot.tasks.admit import Target, queue_request, requested_task
from bot.tasks.cancel import cancel_task
from bot.tasks.context import HandlerContext
from bot.tasks.waiting import cancel_stranded_tasks

router = routing.Router()


def _issue_target(data: dict[str, Any]) -> Target | None:
    issue = data.get("issue") or {}
    if issue.get("state") == "closed":
        return None
    return Target(_number(issue), False, _default_branch(data), None)


def _pull_target(data: dict[str, Any]) -> Target | None:
    pull = data.get("pull_request") or {}
    if pull.get("state") == "closed":
        return None
    head, base = pull.get("head") or {}, pull.get("base") or {}
    head_repo = (head.get("repo") or {}).get("full_name")
    base_repo = (base.get("repo") or {}).get("full_name")
    return Target(
        _number(pull),
        True,
        str(base.get("ref") or _default_branch(data)),
        str(head.get("ref") or ""),
        from_fork=head_repo != base_repo,
    )


@router.register("issues", action="labeled")
async def queue_task_on_issue_label(event: sansio.Event, ctx: HandlerContext) -> None:
    target = _issue_target(event.data)
    if target is not None:
        await _queue_task(event, ctx, target)


@router.register("pull_request", action="labeled")
async def queue_task_on_pull_request_label(event: sansio.Event, ctx: HandlerContext) -> None:
    target = _pull_target(event.data)
    if target is not None:
        await _queue_task(event, ctx, target)


@router.register("issues", action="unlabeled")
async def cancel_task_on_issue_unlabel(event: sansio.Event, ctx: HandlerContext) -> None:
    await _cancel_task(event, ctx, _number(event.data.get("issue") or {}))


@router.register("pull_request", action="unlabeled")
async def cancel_task_on_pull_request_unlabel(event: sansio.Event, ctx: HandlerContext) -> None:
    await _cancel_task(event, ctx, _number(event.data.get("pull_request") or {}))


async def _queue_task(event: sansio.Event, ctx: HandlerContext, target: Target) -> None:
    label = _label_name(event.data)
    if label is None:
        return
    _, configs = ctx.require_github()
    repo = Repo.from_payload(event.data)
    config = await configs.for_repo(repo, default_branch=_default_branch(event.data))
    task_name = requested_task(label, config.policy.triggers.label_prefix)
    if task_name is not None:
        await queue_request(
            ctx, repo, config, task_name=task_name, sender=_sender(event.data), target=target
        )


async def _cancel_task(event: sansio.Event, ctx: HandlerContext, number: int) -> None:
    label = _label_name(event.data)
    if label is None:
        return
    _, configs = ctx.require_github()
    repo = Repo.from_payload(event.data)
    config = await configs.for_repo(repo, default_branch=_default_branch(event.data))
    task_name = requested_task(label, config.policy.triggers.label_prefix)
    if task_name is None:
        return
    sender = _sender(event.data)
    reason = f"label removed by @{sender}"
    task = await cancel_task(
        ctx, repo, number, task_name, actor=sender, reason=reason, config_sha=config.sha
    )
    if task is None:
        return
    # A running task asked to stop is as good as cancelled for the tasks waiting on it.
    await cancel_stranded_tasks(
        ctx, repo, task, actor=sender, how=f"was cancelled ({task.reason or 'label removed'})"
    )


def _label_name(data: dict[str, Any]) -> str | None:
    label = data.get("label")
    if isinstance(label, dict) and isinstance(label.get("name"), str):
        return str(label["name"])
    return None


def _number(item: dict[str, Any]) -> int:
    number = item.get("number")
    if not isinstance(number, int):
        raise PayloadError("event without an issue or pull request number")
    return number


def _sender(data: dict[str, Any]) -> str:
    return str((data.get("sender") or {}).get("login", ""))


def _default_branch(data: dict[str, Any]) -> str:
    return str((data.get("repository") or {}).get("default_branch") or "main")
