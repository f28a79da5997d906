"""Admitting a requested task: queued, held below the trigger permission, or waiting."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from bot.config.models import permission_at_least
from bot.config.source import RepoConfig
from bot.core.dependencies import named
from bot.core.task_states import TaskState
from bot.execution.publication import status
from bot.github.types import Repo
from bot.store import NewTask
from bot.store.tables import Task
from bot.tasks.context import HandlerContext
from bot.tasks.waiting import unmet_for_issue
from bot.texts.markers import marker
from bot.texts.status import Phase

TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def task_branch(task_name: str, issue_number: int) -> str:
    return f"bosun/{task_name}/{issue_number}"


def requested_task(label: str, prefix: str) -> str | None:
    """The task a label asks for, or None when the label is not a trigger."""
    if not label.startswith(prefix):
        return None
    return label[len(prefix) :].strip()


@dataclass(frozen=True)
class Target:
    """Where a trigger label asks a task to work: an issue's new branch, or a PR's head."""

    number: int
    is_pull_request: bool
    base_branch: str
    head_branch: str | None  # a PR's own branch; None for an issue
    from_fork: bool = False


async def queue_request(
    ctx: HandlerContext,
    repo: Repo,
    config: RepoConfig,
    *,
    task_name: str,
    sender: str,
    target: Target,
    review_context: str | None = None,
    tier: str | None = None,
) -> Task | None:
    """Queue a task someone asked for, or hold it when they are below the trigger permission,
    or, when a task it depends on has not had its pull request merged for this issue yet,
    keep it waiting for that.

    A request that cannot be honoured at all (unknown or broken task, bad config, a fork)
    gets one comment saying why, and an audit record. `review_context` is a reviewer's
    requested changes, handed to a re-run of the agent. `tier` (from `/bosun escalate`) runs
    it once on that model tier, without retries.
    """
    github, _ = ctx.require_github()
    detail: dict[str, Any] = {"issue": target.number, "task": task_name}
    refusal = _refusal(config, task_name=task_name)
    if refusal is None and target.from_fork:
        refusal = Refusal(
            "trigger.fork",
            "Bosun did not queue this task: the pull request's branch lives in a fork, and "
            "Bosun only pushes to branches of this repository.",
        )
    if refusal is not None:
        await github.issues.create_comment(
            repo=repo,
            issue_number=target.number,
            body=refusal.comment,
            marker=marker("refusal", f"delivery={ctx.delivery_id}"),
        )
        await ctx.audit(
            refusal.action, actor=sender, repo=repo, config_sha=config.sha, detail=detail
        )
        return None
    actual = await github.repos.permission_of(repo=repo, username=sender)
    permitted = permission_at_least(actual, config.policy.triggers.min_permission)
    # Held wins: nobody has allowed the request yet, whatever its dependencies.
    depends_on = tuple(config.tasks[task_name].depends_on)
    unmet = await unmet_for_issue(ctx, repo, target.number, depends_on) if permitted else []
    state = TaskState.HELD if not permitted else TaskState.WAITING if unmet else TaskState.QUEUED
    branch = target.head_branch or task_branch(task_name, target.number)
    detail |= {"branch": branch, "permission": actual}
    if unmet:
        detail["waits_for"] = unmet
    audit = ctx.entry(
        f"task.{state.value}", actor=sender, repo=repo, config_sha=config.sha, detail=detail
    )
    if state == TaskState.HELD:
        shown = status(Phase.HELD, reason=_held_reason(config, sender=sender, actual=actual))
    elif state == TaskState.WAITING:
        shown = status(Phase.WAITING, reason=named(unmet))
    else:
        shown = status(Phase.QUEUED)
    task = await asyncio.to_thread(
        ctx.store.tasks.create,
        NewTask(
            installation_id=repo.installation_id,
            repo_full_name=repo.full_name,
            issue_number=target.number,
            is_pull_request=target.is_pull_request,
            task_name=task_name,
            branch=branch,
            base_branch=target.base_branch,
            triggered_by=sender,
            trigger_delivery_id=ctx.delivery_id,
            config_sha=config.sha,
            review_context=review_context,
            tier=tier,
            escalated=tier is not None,
            max_attempts=1 if tier is not None else 1 + config.policy.failure.retry.attempts,
        ),
        state=state,
        audit=audit,
        publish=shown,
    )
    if task is None:
        return None
    await ctx.publish(task.id)
    if state == TaskState.QUEUED:
        ctx.wake_scheduler()
    return task


def _held_reason(config: RepoConfig, *, sender: str, actual: str) -> str:
    triggers = config.policy.triggers
    return (
        f"@{sender} has **{actual}** permission, and starting agents here needs "
        f"**{triggers.min_permission.value}** or above. Someone with "
        f"**{triggers.ok_to_run_permission.value}** permission can release it by commenting "
        "`/bosun ok-to-run`."
    )


class Refusal:
    def __init__(self, action: str, comment: str) -> None:
        self.action = action
        self.comment = comment


def _refusal(config: RepoConfig, *, task_name: str) -> Refusal | None:
    """Why this request cannot be honoured at all, as an audit action and a comment."""
    if config.unusable:
        return Refusal(
            "trigger.config_broken",
            "Bosun did not queue this task: the repository's `.bosun/` configuration on the "
            "default branch has errors and there is no earlier good version.\n\n"
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
            "Bosun did not queue this task: no task of that name is defined in "
            f"`.bosun/tasks/`. Tasks defined here: {known}.",
        )
    return None
