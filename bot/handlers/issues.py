"""`issues` events: a trigger label queues a task, removing it cancels the queued task."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from gidgethub import routing, sansio

from bot.config.models import permission_at_least
from bot.config.source import RepoConfig
from bot.errors import PayloadError
from bot.github import Repo
from bot.handlers.context import HandlerContext
from bot.store import NewTask

router = routing.Router()

TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def task_branch(task_name: str, issue_number: int) -> str:
    return f"bosun/{task_name}/{issue_number}"


def requested_task(label: str, prefix: str) -> str | None:
    """The task a label asks for, or None when the label is not a trigger."""
    if not label.startswith(prefix):
        return None
    return label[len(prefix) :].strip()


@router.register("issues", action="labeled")
async def queue_task_on_label(event: sansio.Event, ctx: HandlerContext) -> None:
    label = _label_name(event.data)
    issue = event.data.get("issue") or {}
    if label is None or issue.get("state") == "closed":
        return
    github, configs = ctx.require_github()
    repo = Repo.from_payload(event.data)
    config = await configs.for_repo(repo, default_branch=_default_branch(event.data))
    task_name = requested_task(label, config.policy.triggers.label_prefix)
    if task_name is None:
        return
    sender = _sender(event.data)
    number = _issue_number(event.data)
    refusal = await _refusal(ctx, repo, config, task_name=task_name, sender=sender)
    if refusal is not None:
        await github.create_comment(repo=repo, issue_number=number, body=refusal.comment)
        await _audit(
            ctx, repo, config, sender, refusal.action, {"issue": number, "task": task_name}
        )
        return
    task = await asyncio.to_thread(
        ctx.store.create_task,
        NewTask(
            installation_id=repo.installation_id,
            repo_full_name=repo.full_name,
            issue_number=number,
            is_pull_request=False,
            task_name=task_name,
            branch=task_branch(task_name, number),
            triggered_by=sender,
            trigger_delivery_id=ctx.delivery_id,
            config_sha=config.sha,
        ),
    )
    if task is not None:
        detail = {"issue": number, "task": task_name, "branch": task.branch}
        await _audit(ctx, repo, config, sender, "task.queued", detail, task_id=task.id)


@router.register("issues", action="unlabeled")
async def cancel_task_on_unlabel(event: sansio.Event, ctx: HandlerContext) -> None:
    label = _label_name(event.data)
    if label is None:
        return
    _, configs = ctx.require_github()
    repo = Repo.from_payload(event.data)
    config = await configs.for_repo(repo, default_branch=_default_branch(event.data))
    task_name = requested_task(label, config.policy.triggers.label_prefix)
    if task_name is None:
        return
    number = _issue_number(event.data)
    task = await asyncio.to_thread(
        ctx.store.cancel_queued_task,
        repo.full_name,
        number,
        task_name,
        reason=f"label removed by {_sender(event.data)}",
    )
    if task is not None:
        detail = {"issue": number, "task": task_name}
        sender = _sender(event.data)
        await _audit(ctx, repo, config, sender, "task.cancelled", detail, task_id=task.id)


class Refusal:
    def __init__(self, action: str, comment: str) -> None:
        self.action = action
        self.comment = comment


async def _refusal(
    ctx: HandlerContext, repo: Repo, config: RepoConfig, *, task_name: str, sender: str
) -> Refusal | None:
    """Why this trigger must not queue a task, as an audit action and a comment; None if it may."""
    github, _ = ctx.require_github()
    required = config.policy.triggers.min_permission
    actual = await github.permission_of(repo=repo, username=sender)
    if not permission_at_least(actual, required):
        return Refusal(
            "trigger.denied",
            f"@{sender}, Bosun did not queue this task: triggering agents in "
            f"{repo.full_name} needs **{required.value}** permission or above, and you have "
            f"**{actual}**. Someone with {required.value} access can add the label instead.",
        )
    if config.unusable:
        return Refusal(
            "trigger.config_broken",
            "Bosun did not queue this task: the repository's `.bosun/` configuration on the "
            f"default branch has errors and there is no earlier good version.\n\n"
            f"{config.problem_list()}",
        )
    broken = config.task_problems(task_name) if TASK_NAME.match(task_name) else ()
    if broken:
        listed = "\n".join(f"- `{problem}`" for problem in broken)
        return Refusal(
            "trigger.task_broken",
            f"Bosun did not queue this task: `.bosun/tasks/{task_name}.yaml` on the default "
            f"branch has errors.\n\n{listed}",
        )
    if not TASK_NAME.match(task_name) or task_name not in config.tasks:
        known = ", ".join(f"`{name}`" for name in sorted(config.tasks)) or "none"
        return Refusal(
            "trigger.unknown_task",
            "Bosun did not queue this task: the label does not name a task defined in "
            f"`.bosun/tasks/`. Tasks defined here: {known}.",
        )
    return None


async def _audit(
    ctx: HandlerContext,
    repo: Repo,
    config: RepoConfig,
    actor: str,
    action: str,
    detail: dict[str, Any],
    *,
    task_id: int | None = None,
) -> None:
    await asyncio.to_thread(
        ctx.store.audit,
        actor=actor,
        action=action,
        repo_full_name=repo.full_name,
        delivery_id=ctx.delivery_id,
        config_sha=config.sha,
        task_id=task_id,
        detail=detail,
    )


def _label_name(data: dict[str, Any]) -> str | None:
    label = data.get("label")
    if isinstance(label, dict) and isinstance(label.get("name"), str):
        return str(label["name"])
    return None


def _issue_number(data: dict[str, Any]) -> int:
    number = (data.get("issue") or {}).get("number")
    if not isinstance(number, int):
        raise PayloadError("issues event without an issue number")
    return number


def _sender(data: dict[str, Any]) -> str:
    return str((data.get("sender") or {}).get("login", ""))


def _default_branch(data: dict[str, Any]) -> str:
    return str((data.get("repository") or {}).get("default_branch") or "main")
