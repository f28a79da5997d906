"""The publish phase of a run, outside the sandbox: commit, push, pull request, check run.

Each step is a create-or-update of a stable identity (the task's branch, the one pull
request from it, the check run of its head commit), so a run that repeats a step after a
failure changes nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.core.approvals import requesters
from bot.core.clock import Clock
from bot.core.failures import FailureKind, RunFailed, RunFailure, describe
from bot.core.task_states import TaskState
from bot.execution.publication import (
    READY_TITLE,
    Publisher,
    Reporter,
    branch_head,
    check,
    repo_of,
    status,
)
from bot.execution.run_plan import RunPlan
from bot.github.client import GitHubClient
from bot.github.types import Issue
from bot.scheduling.locks import lock_key
from bot.store import AuditEntry, Publish, Store
from bot.store.tables import Task
from bot.tasks.approvals import count_approvals
from bot.texts.facts import RunFacts
from bot.texts.pull_request import pull_request_body
from bot.texts.status import Phase
from sandbox.runtime.builtin import AgentResult
from sandbox.workspace import Workspace, WorkspaceError

TITLE_LIMIT = 250


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who Bosun's commits and records name, and where a run's records say it ran."""

    bot_name: str
    bot_email: str
    holder: str
    sandbox: str

    def audit(self, task: Task, action: str, detail: Mapping[str, Any] | None = None) -> AuditEntry:
        """An audit record of Bosun's own, about `task`, naming the worker and sandbox."""
        return AuditEntry(
            actor="bosun",
            action=action,
            repo_full_name=task.repo_full_name,
            config_sha=task.config_sha,
            task_id=task.id,
            detail={"worker": self.holder, "sandbox": self.sandbox, **(detail or {})},
        )


@dataclass(frozen=True, kw_only=True)
class RunPublisher:
    store: Store
    github: GitHubClient
    publisher: Publisher
    clock: Clock
    identity: Identity

    async def publish(
        self,
        task: Task,
        *,
        workspace: Workspace,
        token: str,
        issue: Issue,
        result: AgentResult,
        plan: RunPlan,
        changed: list[str],
        started: float,
    ) -> None:
        """Commit and push the agent's change, open or refresh its pull request, and end the
        run as `pr_open` with the check run that says so."""
        assert task.id is not None
        started_record = await asyncio.to_thread(self.store.audit.last, task.id, "task.started")
        audit_id = started_record.id if started_record is not None else None
        sha = await asyncio.to_thread(
            workspace.commit,
            message=commit_message(task, issue, audit_id=audit_id),
            author_name=self.identity.bot_name,
            author_email=self.identity.bot_email,
        )
        if sha is None:
            raise RunFailed(FailureKind.REFUSED, "the agent finished without changing any file")
        await self._push(task, workspace, token=token, sha=sha)
        facts = await self._facts(task, started=started, changed=changed)
        pr_number = await self._pull_request(task, issue, result, facts)
        approvals = await self._approvals(task, plan, pr_number=pr_number, sha=sha)
        shown = check(
            head_sha=sha,
            conclusion="success",
            title=READY_TITLE,
            approvals=approvals,
            required_approvals=plan.review.required_approvals,
        )
        # The check run goes first, so that reviewers see it by the time the task says the
        # pull request is ready; if GitHub fails it now, the reconcile loop shows it later.
        await asyncio.to_thread(self.store.tasks.update, task.id, publish=Publish(check=shown))
        await self.publisher.sync(task.id)
        ended = await asyncio.to_thread(
            self.store.tasks.finish_run,
            task.id,
            TaskState.PR_OPEN,
            lock_key=lock_key(task.repo_full_name, task.branch),
            holder=self.identity.holder,
            audit=self.identity.audit(task, "task.pr_opened", {"pr": pr_number, "head_sha": sha}),
            publish=status(Phase.PR_OPENED),
            pr_number=pr_number,
            head_sha=sha,
            reason=None,
        )
        if ended:
            await self.publisher.sync(task.id)

    async def keep(
        self,
        task: Task,
        *,
        workspace: Workspace,
        token: str,
        issue: Issue,
        plan: RunPlan,
        why: RunFailure,
    ) -> None:
        """Keep a failed attempt's change on the task's branch, as the policy says, with a
        failed check run that says why: the next attempt starts from it, and people can
        pick it up. A change that broke a rule never comes here."""
        assert task.id is not None
        if plan.failure.keep == "nothing":
            return
        sha = await asyncio.to_thread(
            workspace.commit,
            message=wip_message(task, issue, why),
            author_name=self.identity.bot_name,
            author_email=self.identity.bot_email,
        )
        if sha is None:
            return
        await self._push(task, workspace, token=token, sha=sha)
        failed = check(head_sha=sha, conclusion="failure", title=not_ready_title(why))
        await asyncio.to_thread(self.store.tasks.update, task.id, publish=Publish(check=failed))
        await self.publisher.sync(task.id)

    async def _push(self, task: Task, workspace: Workspace, *, token: str, sha: str) -> None:
        """Push the agent's commit, remembering for a rollback where the branch stood before
        the task's first push and whether that push created it."""
        assert task.id is not None
        before = await branch_head(self.github, task)
        try:
            await asyncio.to_thread(workspace.push, token=token)
        except WorkspaceError as exc:
            raise RunFailed(FailureKind.PUSH_REFUSED, str(exc)[:1000]) from exc
        fields: dict[str, Any] = {"pushed_sha": sha}
        if task.pushed_from_sha is None:  # the claimed row: earlier attempts' pushes are in it
            fields |= {
                "pushed_from_sha": before or workspace.base_sha,
                "created_branch": not before,
            }
        await asyncio.to_thread(self.store.tasks.update, task.id, **fields)

    async def _pull_request(
        self, task: Task, issue: Issue, result: AgentResult, facts: RunFacts
    ) -> int:
        """The pull request the change goes to: the task's own, or the one it works on."""
        if task.is_pull_request:
            return task.issue_number
        title = f"[bosun/{task.task_name}] {one_line(issue.title)}"
        body = pull_request_body(
            issue_number=task.issue_number,
            task_name=task.task_name,
            summary=result.summary,
            facts=facts,
        )
        reporter = Reporter(github=self.github, store=self.store, repo=repo_of(task), task=task)
        pull = await reporter.pull_request(title=title[:TITLE_LIMIT], body=body)
        return pull.number

    async def _approvals(self, task: Task, plan: RunPlan, *, pr_number: int, sha: str) -> int:
        """Approvals of the commit just pushed: none yet, unless GitHub holds a review of it."""
        earlier = await asyncio.to_thread(self.store.tasks.for_pull, task.repo_full_name, pr_number)
        return await count_approvals(
            self.github,
            repo=repo_of(task),
            number=pr_number,
            head_sha=sha,
            excluded=requesters([*earlier, task]),
            review=plan.review,
        )

    async def _facts(self, task: Task, *, started: float, changed: list[str]) -> RunFacts:
        assert task.id is not None
        fresh = await asyncio.to_thread(self.store.tasks.get, task.id) or task
        calls = await asyncio.to_thread(self.store.model_calls.for_task, task.id)
        return RunFacts(
            models=tuple(dict.fromkeys(call.model for call in calls)),
            tokens_in=fresh.tokens_in,
            tokens_out=fresh.tokens_out,
            cost_usd=fresh.cost_usd,
            duration=timedelta(seconds=self.clock.monotonic() - started),
            attempts=fresh.attempts,
            max_attempts=fresh.max_attempts,
            files_changed=tuple(changed),
            sandbox=self.identity.sandbox,
        )


def not_ready_title(why: RunFailure) -> str:
    if why.kind == FailureKind.VERIFY_FAILED:
        return "Verification failed"
    return f"Not finished: {describe(why.kind)}"


def wip_message(task: Task, issue: Issue, why: RunFailure) -> str:
    title = one_line(issue.title)[:50]
    return (
        f"WIP {task.task_name}: {title} (#{task.issue_number})\n\n"
        f"Bosun task {task.id}, attempt {task.attempts}, did not finish: "
        f"{describe(why.kind)}. Kept for the next attempt and for people.\n"
    )


def one_line(text: str) -> str:
    return " ".join(text.split())


def commit_message(task: Task, issue: Issue, *, audit_id: int | None) -> str:
    title = one_line(issue.title)[:60]
    return (
        f"{task.task_name}: {title} (#{task.issue_number})\n\n"
        f"Made by Bosun task {task.id} for #{task.issue_number}, attempt {task.attempts}.\n"
        f"Audit id: {audit_id}\n"
    )
