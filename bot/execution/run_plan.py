"""What one run of a task will be, decided from its config and its issue: plain data."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config.models import Agent, CommandLimits, Environment, Failure, Review, TaskSpec, route
from bot.config.source import RepoConfig
from bot.core.failures import FailureKind, RunFailure
from bot.github.types import Issue, Repo
from bot.store.tables import Task
from sandbox.backends import Limits
from sandbox.backends.base import DEFAULT_PATH as SANDBOX_PATH
from sandbox.backends.bubblewrap import WORKSPACE


@dataclass(frozen=True, kw_only=True)
class RunPlan:
    tier: str
    repo: Repo
    spec: TaskSpec
    agent: Agent
    models: list[str]
    budget_usd: float
    protected: list[str]
    review: Review
    failure: Failure
    max_attempts: int  # as the policy in force allows; an escalated run keeps its one
    environment: Environment
    verify: list[str]  # the task's own checks, else the policy's
    verify_limits: CommandLimits


def command_env(plan: RunPlan) -> dict[str, str]:
    """The environment of the agent's and verify's commands: the environment's bin
    directories first on PATH (inside the sandbox the worktree is /workspace)."""
    extra = [f"{WORKSPACE}/{path.strip('/')}" for path in plan.environment.path]
    return {"PATH": ":".join([*extra, SANDBOX_PATH])}


def command_limits(limits: CommandLimits) -> Limits:
    return Limits(
        cpu_seconds=limits.cpu_seconds,
        memory_mb=limits.memory_mb,
        wall_seconds=float(limits.wall_seconds),
    )


def plan_run(config: RepoConfig, task: Task, issue: Issue, *, repo: Repo) -> RunPlan | RunFailure:
    """The run's tier, agent, models, budget and rules; a failure when the task is unusable."""
    spec = config.tasks.get(task.task_name)
    if spec is None or config.unusable:
        return RunFailure(
            FailureKind.INVALID_TASK,
            f"`{task.task_name}` is not a valid task at config {task.config_sha}",
        )
    policy = config.policy
    escalated_tier = task.tier if task.tier in policy.models.tiers else None
    tier = escalated_tier or route(
        policy,
        task_type=spec.task_type,
        labels=list(issue.labels),
        paths=[],  # what the agent will touch is not known before it runs
        issue_chars=len(issue.body),
        task_tier=spec.tier,
    )
    return RunPlan(
        tier=tier,
        repo=repo,
        spec=spec,
        agent=policy.agents[spec.agent],
        models=list(policy.models.tiers[tier]),
        budget_usd=spec.budget_usd or policy.budgets.per_task_usd,
        protected=list(policy.protected_paths),
        review=policy.review,
        failure=policy.failure,
        max_attempts=task.max_attempts if task.escalated else 1 + policy.failure.retry.attempts,
        environment=policy.environment,
        verify=list(spec.verify if spec.verify is not None else policy.verify.commands),
        verify_limits=policy.verify.limits,
    )
