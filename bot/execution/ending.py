"""How a run ends when it does not open a pull request: cancelled, failed, lost, or given back.

Every ending is one conditional write of the new state, with its audit record and what
GitHub should show; the failure policy decides the state of a failed run.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.config.models import Failure
from bot.config.source import ConfigProvider, RepoConfig
from bot.core.clock import Clock
from bot.core.errors import GitHubError, GitHubRateLimited, GitHubTransientError
from bot.core.failures import Attempts, FailureKind, RunFailure, decide
from bot.core.task_states import TaskState
from bot.execution.failure_actions import FailureActions
from bot.execution.publication import Publisher, branch_head, check, repo_of, status, with_check
from bot.execution.publish import Identity
from bot.execution.run_plan import RunPlan
from bot.github.client import GitHubClient
from bot.scheduling.locks import lock_key
from bot.store import AuditEntry, Publish, Store
from bot.store.tables import Task
from bot.texts.status import Phase

log = structlog.get_logger("bosun.ending")

# Reading the failure policy: GitHub's transient failures are waited out, never replaced by
# the default policy (which may be far from what the repository asks for).
POLICY_READS = 8
POLICY_BACKOFF_MAX = 60.0


@dataclass(frozen=True, kw_only=True)
class RunEnding:
    store: Store
    github: GitHubClient
    configs: ConfigProvider
    publisher: Publisher
    actions: FailureActions
    identity: Identity
    clock: Clock

    async def failed(self, task: Task, failure: RunFailure, plan: RunPlan | None) -> None:
        """Apply the failure policy to this run's failure: retry, escalate, or end the task."""
        assert task.id is not None
        fresh = await asyncio.to_thread(self.store.tasks.get, task.id) or task
        if fresh.cancel_requested:  # a person asked it to stop: that wins over any retry
            await self.cancelled(task)
            return
        policy = plan.failure if plan is not None else await self.failure_policy(fresh)
        tier_used = plan.tier if plan is not None else fresh.tier
        decision = decide(policy, failure.kind, attempts_of(fresh, tier_used))

        async def end_run(
            state: TaskState, fields: dict[str, Any], audit: AuditEntry, publish: Publish
        ) -> bool:
            assert task.id is not None
            return await asyncio.to_thread(
                self.store.tasks.finish_run,
                task.id,
                state,
                lock_key=self._lock_key(task),
                holder=self.identity.holder,
                audit=audit,
                publish=publish,
                **fields,
            )

        await self.actions.apply(fresh, failure, decision, policy, end_run=end_run)

    async def cancelled(self, task: Task) -> None:
        """End the run as a person asked, with the reason the cancel recorded, and say so;
        the check run of the branch's head says so too."""
        assert task.id is not None
        fresh = await asyncio.to_thread(self.store.tasks.get, task.id) or task
        publish = await self._cancelled_view(fresh)
        audit = self.identity.audit(fresh, "task.cancelled", {"reason": fresh.reason})
        if await asyncio.to_thread(
            self.store.tasks.finish_run,
            task.id,
            TaskState.CANCELLED,
            lock_key=self._lock_key(task),
            holder=self.identity.holder,
            audit=audit,
            publish=publish,
        ):
            await self.publisher.sync(task.id)

    async def requeue(self, task: Task) -> None:
        """Bosun is stopping: give the attempt back and leave the task queued."""
        assert task.id is not None
        await asyncio.to_thread(
            self.store.tasks.finish_run,
            task.id,
            TaskState.QUEUED,
            lock_key=self._lock_key(task),
            holder=self.identity.holder,
            attempts=max(0, task.attempts - 1),
            reason="interrupted: Bosun stopped",
        )

    async def recover_lost(self, task: Task) -> None:
        """A worker died under `task` (its lease lapsed): the failure policy decides again,
        unless a person asked the task to stop."""
        assert task.id is not None
        store = self.store
        worker_id, attempt = task.worker_id, task.attempts

        async def end_run(
            state: TaskState, fields: dict[str, Any], audit: AuditEntry, publish: Publish
        ) -> bool:
            assert task.id is not None

            def end() -> bool:
                return store.tasks.end_lost_run(
                    task.id or 0,
                    state,
                    worker_id=worker_id,
                    attempt=attempt,
                    audit=audit,
                    publish=publish,
                    **fields,
                )

            return await asyncio.to_thread(end)

        if task.cancel_requested:
            reason = task.reason or "cancelled"
            audit = self.identity.audit(task, "task.cancelled", {"reason": reason})
            if await end_run(
                TaskState.CANCELLED, {"reason": reason}, audit, status(Phase.CANCELLED)
            ):
                await self.publisher.sync(task.id)
            return
        policy = await self.failure_policy(task)
        failure = RunFailure(
            FailureKind.WORKER_LOST, f"worker {task.worker_id} stopped renewing its lease"
        )
        decision = decide(policy, failure.kind, attempts_of(task, task.tier))
        await self.actions.apply(task, failure, decision, policy, end_run=end_run)

    async def failure_policy(self, task: Task) -> Failure:
        return await failure_policy_of(self.configs, task, clock=self.clock)

    async def _cancelled_view(self, task: Task) -> Publish:
        publish = status(Phase.CANCELLED)
        head = None
        with contextlib.suppress(GitHubError):  # no check run, then: the status says it all
            head = await branch_head(self.github, task)
        if head is None:
            return publish
        shown = check(head_sha=head, conclusion="cancelled", title="Task cancelled")
        return with_check(publish, shown)

    @staticmethod
    def _lock_key(task: Task) -> str:
        """The lock a run holds, so that its end and the lock's release are one write."""
        return lock_key(task.repo_full_name, task.branch)


async def failure_policy_of(configs: ConfigProvider, task: Task, *, clock: Clock) -> Failure:
    """The failure policy at the task's config; the defaults only when that config is
    unusable. GitHub failing to answer is waited out (the lease is kept meanwhile)."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(POLICY_READS),
        retry=retry_if_exception_type((GitHubTransientError, GitHubRateLimited)),
        wait=wait_exponential(multiplier=2, max=POLICY_BACKOFF_MAX),
        sleep=clock.sleep,
        reraise=True,
    )
    try:
        config: RepoConfig = await retrying(configs.at_commit, repo_of(task), task.config_sha or "")
    except (GitHubTransientError, GitHubRateLimited):
        raise
    except GitHubError as exc:  # the commit cannot be read at all: no config to follow
        log.warning("config unreadable: default failure policy", task_id=task.id, error=str(exc))
        return Failure()
    if config.unusable:
        log.warning("unusable config: the default failure policy applies", task_id=task.id)
        return Failure()
    return config.policy.failure


def attempts_of(task: Task, tier_used: str | None) -> Attempts:
    return Attempts(
        made=task.attempts,
        allowed=task.max_attempts,
        tier_used=tier_used,
        escalated=task.escalated,
    )
