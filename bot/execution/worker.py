"""Runs one claimed task: its lifecycle under a renewed lease, from the plan to the ending.

The phases are in their own modules: the plan (`run_plan`), the agent (`agent_run`), the
verdict (`judge`), publishing (`publish`) and every other ending (`ending`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from bot.config.source import ConfigProvider
from bot.core.clock import Clock
from bot.core.errors import GitHubError
from bot.core.failures import FailureKind, RunFailed, RunFailure
from bot.core.redaction import Redactor
from bot.execution.agent_run import AgentRunner
from bot.execution.ending import RunEnding
from bot.execution.failure_actions import FailureActions
from bot.execution.judge import agent_stopped, checks_failed, rules_broken, unchanged
from bot.execution.publication import Publisher, repo_of, status
from bot.execution.publish import Identity, RunPublisher
from bot.execution.run_plan import RunPlan, command_env, command_limits, plan_run
from bot.execution.transcript import Recorder
from bot.execution.verify import failure_report, run_checks
from bot.github.client import GitHubClient
from bot.github.types import Issue
from bot.llm.client import LLM
from bot.scheduling.locks import lock_key
from bot.store import Store
from bot.store.tables import Task
from bot.texts.status import Phase
from sandbox.backends import Backend
from sandbox.runtime.script import Script
from sandbox.workspace import Workspace, prepare

log = structlog.get_logger("bosun.worker")


@dataclass(frozen=True, kw_only=True)
class WorkerDeps:
    store: Store
    github: GitHubClient
    configs: ConfigProvider
    llm: LLM
    backend: Backend
    backend_name: str
    workspace_root: Path
    clock: Clock
    holder: str
    lease_ttl: float
    bot_name: str = "bosun[bot]"
    bot_email: str = "bosun[bot]@users.noreply.github.com"
    script: Script | None = None
    heartbeat: float = 1.0  # seconds between lease renewals and cancel checks
    publisher: Publisher | None = None  # shared with the handlers; one of its own if None
    redact: Redactor = field(default_factory=Redactor)  # the operator's secrets, known values


@dataclass
class _Run:
    """What one run learned that its ending needs: the plan, once made."""

    plan: RunPlan | None = None
    stop: list[str] = field(default_factory=list)  # why the keeper stopped it: cancel, lost


class Worker:
    """Runs tasks the scheduler hands it; every end of a run is a state, a record, a view."""

    def __init__(self, deps: WorkerDeps) -> None:
        self._deps = deps
        self.publisher = deps.publisher or Publisher(
            github=deps.github, store=deps.store, clock=deps.clock
        )
        self._identity = Identity(
            bot_name=deps.bot_name,
            bot_email=deps.bot_email,
            holder=deps.holder,
            sandbox=deps.backend_name,
        )
        actions = FailureActions(
            store=deps.store,
            github=deps.github,
            publisher=self.publisher,
            clock=deps.clock,
            identity=self._identity,
            workspace_root=deps.workspace_root,
            lease_ttl=deps.lease_ttl,
        )
        self._ending = RunEnding(
            store=deps.store,
            github=deps.github,
            configs=deps.configs,
            publisher=self.publisher,
            actions=actions,
            identity=self._identity,
            clock=deps.clock,
        )
        self._agent = AgentRunner(
            store=deps.store,
            llm=deps.llm,
            backend=deps.backend,
            clock=deps.clock,
            script=deps.script,
        )
        self._publish = RunPublisher(
            store=deps.store,
            github=deps.github,
            publisher=self.publisher,
            clock=deps.clock,
            identity=self._identity,
        )

    async def run(self, task: Task) -> None:
        """Run the task once; the lease is renewed until its ending is written."""
        assert task.id is not None
        key = lock_key(task.repo_full_name, task.branch)
        run = _Run()
        attempt = asyncio.ensure_future(self._attempt(task, run))
        keeper = asyncio.create_task(self._keep_lease(task.id, key, run, attempt))
        bound = log.bind(task_id=task.id, repo=task.repo_full_name, task=task.task_name)
        try:
            failure = await self._outcome(attempt, run, bound)
            if run.stop[:1] == ["cancel"]:
                await self._ending.cancelled(task)
            elif failure is not None and not run.stop:
                await self._ending.failed(task, failure, run.plan)
        except asyncio.CancelledError:
            if not run.stop:  # Bosun is stopping: give the attempt back, leave the task queued
                await _uncancellable(self._ending.requeue(task))
            raise
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            if run.stop[:1] != ["lost"]:
                await asyncio.to_thread(
                    self._deps.store.leases.release, key, holder=self._deps.holder
                )

    async def recover_lost(self, task: Task) -> None:
        """A worker died under `task`: its ending is decided here instead."""
        await self._ending.recover_lost(task)

    async def _outcome(
        self, attempt: asyncio.Future[None], run: _Run, bound: Any
    ) -> RunFailure | None:
        """How the attempt ended: None when it published or was stopped, else its failure."""
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            if attempt.cancelled() and run.stop:
                return None  # the keeper stopped it: a cancel, or a lost lease
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
            raise
        except RunFailed as exc:
            bound.info("run failed", kind=exc.failure.kind.value, reason=str(exc))
            return exc.failure
        except GitHubError as exc:
            bound.warning("run failed on a GitHub call", error=str(exc))
            return RunFailure(FailureKind.GITHUB_ERROR, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            bound.exception("run failed")
            return RunFailure(FailureKind.INTERNAL, f"{type(exc).__name__}: {exc}")
        return None

    async def _keep_lease(
        self, task_id: int, key: str, run: _Run, attempt: asyncio.Future[None]
    ) -> None:
        """Renew the lease; stop the attempt when the lease is lost or a cancel is requested."""
        store, holder = self._deps.store, self._deps.holder
        while True:
            await self._deps.clock.sleep(self._deps.heartbeat)
            ttl = self._deps.lease_ttl
            if not await asyncio.to_thread(store.leases.renew, key, holder=holder, ttl=ttl):
                run.stop.append("lost")
            elif not attempt.done():
                current = await asyncio.to_thread(store.tasks.get, task_id)
                if current is not None and current.cancel_requested:
                    run.stop.append("cancel")
            if run.stop:
                attempt.cancel()
                return

    async def _attempt(self, task: Task, run: _Run) -> None:
        assert task.id is not None
        deps = self._deps
        repo = repo_of(task)
        issue = await deps.github.issues.get_issue(repo=repo, number=task.issue_number)
        config = await deps.configs.at_commit(repo, task.config_sha or "")
        planned = plan_run(config, task, issue, repo=repo)
        if isinstance(planned, RunFailure):
            raise RunFailed(planned.kind, planned.message)
        plan = run.plan = planned
        started = deps.clock.monotonic()
        await asyncio.to_thread(
            deps.store.tasks.update,
            task.id,
            audit=self._identity.audit(
                task, "task.started", {"attempt": task.attempts, "tier": plan.tier}
            ),
            publish=status(Phase.RUNNING),
            tier=plan.tier,  # the tier it runs on, for escalation to compare against
            max_attempts=plan.max_attempts,
        )
        task.max_attempts = plan.max_attempts
        await self.publisher.sync(task.id)
        token = await deps.github.installation_token(installation_id=task.installation_id)
        clone_url = await deps.github.repos.clone_url(repo=repo)
        workspace = await asyncio.to_thread(
            prepare,
            clone_url=clone_url,
            token=token,
            base_branch=task.base_branch,
            branch=task.branch,
            root=deps.workspace_root,
        )
        recorder = Recorder(
            store=deps.store,
            task_id=task.id,
            attempt=task.attempts,
            redact=deps.redact.with_secrets([token]),
        )
        try:
            await self._work(task, plan, workspace, issue, token, recorder, started)
        finally:
            await _uncancellable(asyncio.to_thread(workspace.cleanup))

    async def _work(
        self,
        task: Task,
        plan: RunPlan,
        workspace: Workspace,
        issue: Issue,
        token: str,
        recorder: Recorder,
        started: float,
    ) -> None:
        """The agent, the verdicts on its change, the project's checks, then the push."""
        result = await self._agent.run(task, plan, workspace, issue, recorder=recorder)
        changed = await asyncio.to_thread(workspace.changed_paths)
        broken = rules_broken(changed, plan)
        if broken is not None:  # nothing of such a change leaves the sandbox
            raise RunFailed(broken.kind, broken.message)
        stopped = agent_stopped(result) or unchanged(changed)
        if stopped is None and plan.verify:
            checks = await run_checks(
                self._deps.backend,
                workspace.path,
                plan.verify,
                env=command_env(plan),
                limits=command_limits(plan.verify_limits),
            )
            await recorder.checks("verify", checks)
            stopped = checks_failed(checks, failure_report(checks))
        if stopped is not None:
            if stopped.kind.leaves_work and changed:
                await self._publish.keep(
                    task, workspace=workspace, token=token, issue=issue, plan=plan, why=stopped
                )
            raise RunFailed(stopped.kind, stopped.message, output=stopped.output)
        await self._publish.publish(
            task,
            workspace=workspace,
            token=token,
            issue=issue,
            result=result,
            plan=plan,
            changed=changed,
            started=started,
        )


async def _uncancellable(work: Coroutine[Any, Any, None]) -> None:
    """Finish `work` even if the run is cancelled meanwhile, then let the cancel through.

    A thread cannot be stopped: leaving it behind would remove a clone while Bosun moves on.
    """
    future = asyncio.ensure_future(work)
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await future
        raise
