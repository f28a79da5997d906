"""Carrying out the failure policy's decision: state with its record, then what people see.

The worker calls it when a run fails; the scheduler's recovery calls it when a worker is
lost. The state change comes first and is conditional (`end_run`): whoever loses that race
does nothing more, so a failure is acted on once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from bot.config.models import Escalate, Failure
from bot.core.clock import Clock
from bot.core.errors import GitHubError
from bot.core.failures import Action, Decision, RunFailure, describe
from bot.core.task_states import TaskState
from bot.execution.publication import (
    Publisher,
    branch_head,
    check,
    repo_of,
    status,
    stored_facts,
)
from bot.execution.publish import Identity
from bot.github.client import GitHubClient
from bot.github.types import PullState
from bot.scheduling.locks import lock_key
from bot.store import AuditEntry, Publish, Store
from bot.store.tables import Task
from bot.texts.hand_over import hand_over_comment
from bot.texts.markers import marker
from bot.texts.pull_request import draft_pull_request_body
from bot.texts.status import Phase
from sandbox.backends.base import SandboxError
from sandbox.workspace import prepare

log = structlog.get_logger("bosun.failure")

EndRun = Callable[[TaskState, dict[str, Any], AuditEntry, Publish], Awaitable[bool]]

PHASES = {
    Action.RETRY: Phase.RETRYING,
    Action.ESCALATE_TIER: Phase.ESCALATING,
    Action.HAND_OVER: Phase.HANDED_OVER,
    Action.ABANDON: Phase.FAILED,
    Action.ROLLBACK: Phase.ROLLED_BACK,
}
FINAL = (Action.HAND_OVER, Action.ABANDON, Action.ROLLBACK)
FAILURE_CONTEXT_CHARS = 12_000


@dataclass(frozen=True, kw_only=True)
class FailureActions:
    store: Store
    github: GitHubClient
    publisher: Publisher
    clock: Clock
    identity: Identity
    workspace_root: Path
    lease_ttl: float  # the branch lock is taken again for a rollback's git work

    async def apply(
        self,
        task: Task,
        failure: RunFailure,
        decision: Decision,
        policy: Failure,
        *,
        end_run: EndRun,
    ) -> bool:
        """End the run as `decision` says; False if it was no longer this caller's to end.

        The new state, its audit record and the status comment it should show are one
        write; what GitHub shows follows, and is published again until it shows it."""
        assert task.id is not None
        target, fields = self._ending(task, failure, decision)
        detail: dict[str, Any] = {
            "kind": failure.kind.value,
            "message": failure.message[:2000],
            "attempt": task.attempts,
            "max_attempts": task.max_attempts,
        }
        if decision.action == Action.RETRY:
            detail["delay_seconds"] = decision.delay_seconds
        if decision.tier is not None:
            detail["tier"] = decision.tier
        handed_over = decision.action == Action.HAND_OVER
        mentions = tuple(policy.escalate.mention) if handed_over else ()
        audit = self.identity.audit(task, f"task.{decision.action.value}", detail)
        if not await end_run(
            target, fields, audit, status(PHASES[decision.action], mentions=mentions)
        ):
            return False
        log.info(
            "run failed",
            task_id=task.id,
            kind=failure.kind.value,
            action=decision.action.value,
            attempt=task.attempts,
        )
        fresh = await asyncio.to_thread(self.store.tasks.get, task.id) or task
        try:
            if handed_over:
                await self._hand_over(fresh, policy)
            elif decision.action == Action.ROLLBACK:
                await self._roll_back(fresh)
        except GitHubError as exc:  # the state is recorded; the comment says what is left
            log.warning("failure action incomplete", task_id=task.id, error=str(exc))
            left = (f"not finished, GitHub answered {exc.status_code}: {exc}",)
            await self._show(fresh, status(PHASES[decision.action], undone=left))
        if decision.action in FINAL:
            await self._failed_check_run(fresh)
            if decision.action != Action.ROLLBACK:
                await self._draft_pull_request(fresh, policy, failure)
        await self.publisher.sync(task.id)
        return True

    def _ending(
        self, task: Task, failure: RunFailure, decision: Decision
    ) -> tuple[TaskState, dict[str, Any]]:
        what = f"{describe(failure.kind)}: {failure.message}"
        fields: dict[str, Any] = {"failure_kind": failure.kind.value}
        if decision.action in (Action.RETRY, Action.ESCALATE_TIER):
            # What the next attempt is told, so that it is no replay of this one.
            told = f"{what}\n\n{failure.output}".strip()
            fields["failure_context"] = told[-FAILURE_CONTEXT_CHARS:]
        if decision.action == Action.RETRY:
            wait = timedelta(seconds=decision.delay_seconds)
            fields["not_before"] = self.clock.now() + wait
            fields["reason"] = (
                f"{what}. Attempt {task.attempts} of {task.max_attempts} failed; "
                f"the next starts in {_seconds(decision.delay_seconds)}."
            )
            return TaskState.QUEUED, _capped(fields)
        if decision.action == Action.ESCALATE_TIER:
            fields |= {
                "tier": decision.tier,
                "escalated": True,
                "not_before": None,
                "max_attempts": task.attempts + 1,
                "reason": f"{what}. Its retries are used up; one more run on the "
                f"`{decision.tier}` tier.",
            }
            return TaskState.QUEUED, _capped(fields)
        endings = {
            Action.HAND_OVER: f"{what}. Handed to people.",
            Action.ABANDON: f"{what}. Abandoned: the locks are released, the branch is kept.",
            Action.ROLLBACK: f"{what}. Rolled back.",
        }
        fields["reason"] = endings[decision.action]
        return TaskState.FAILED, _capped(fields)

    async def _hand_over(self, task: Task, policy: Failure) -> None:
        key = f"attempt={task.attempts}"
        await hand_over(self.github, task, policy.escalate, reason=task.reason or "", key=key)
        labelled = self.identity.audit(task, "task.labelled", {"label": policy.escalate.label})
        await asyncio.to_thread(self.store.audit.record, labelled)

    async def _roll_back(self, task: Task) -> None:
        """Take back what Bosun published for this task, under the branch lock: a branch the
        task created goes, with its pull request; on a branch that was there before (a
        person's pull request, an earlier run's), the task's own pushes are reverted."""
        assert task.id is not None
        key = lock_key(task.repo_full_name, task.branch)
        store, holder = self.store, self.identity.holder
        if not await asyncio.to_thread(
            store.leases.take, key, task_id=task.id, holder=holder, ttl=self.lease_ttl
        ):
            busy = "nothing yet: another run holds the branch; take back its pushes by hand"
            await self._show(task, status(Phase.ROLLED_BACK, undone=(busy,)))
            return
        keeper = asyncio.create_task(self._keep_lock(key))
        try:
            undone = await self._undo(task)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await asyncio.to_thread(store.leases.release, key, holder=holder)
        shown = undone or ("nothing: Bosun had pushed nothing for this task",)
        rolled_back = self.identity.audit(task, "task.rolled_back", {"undone": list(undone)})
        await asyncio.to_thread(
            store.tasks.update,
            task.id,
            audit=rolled_back,
            publish=status(Phase.ROLLED_BACK, undone=shown),
        )

    async def _keep_lock(self, key: str) -> None:
        """Renew the branch lock while a clone and push take their time."""
        while True:
            await self.clock.sleep(self.lease_ttl / 3)
            await asyncio.to_thread(
                self.store.leases.renew, key, holder=self.identity.holder, ttl=self.lease_ttl
            )

    async def _undo(self, task: Task) -> tuple[str, ...]:
        repo = repo_of(task)
        undone: list[str] = []
        if task.created_branch and not task.is_pull_request:
            pull = await self.github.pulls.find_open_pull(repo=repo, head_branch=task.branch)
            if pull is not None:
                number = pull.number
                await self.github.pulls.update_pull(
                    repo=repo, number=number, state=PullState.CLOSED
                )
                undone.append(f"pull request #{number} closed")
            if await branch_head(self.github, task) is not None:
                await self.github.repos.delete_branch(repo=repo, branch=task.branch)
                undone.append(f"branch `{task.branch}` deleted")
        elif task.pushed_sha and task.pushed_from_sha:
            undone.append(await self._revert(task))
        return tuple(undone)

    async def _revert(self, task: Task) -> str:
        assert task.pushed_from_sha is not None and task.pushed_sha is not None
        repo = repo_of(task)
        token = await self.github.installation_token(installation_id=task.installation_id)
        clone_url = await self.github.repos.clone_url(repo=repo)

        def revert() -> str | None:
            workspace = prepare(
                clone_url=clone_url,
                token=token,
                base_branch=task.base_branch,
                branch=task.branch,
                root=self.workspace_root,
            )
            try:
                sha = workspace.revert(
                    from_sha=str(task.pushed_from_sha),
                    to_sha=str(task.pushed_sha),
                    message=f"Revert Bosun's {task.task_name} change (task {task.id})",
                    author_name=self.identity.bot_name,
                    author_email=self.identity.bot_email,
                )
                if sha is not None:
                    workspace.push(token=token)
                return sha
            finally:
                workspace.cleanup()

        try:
            sha = await asyncio.to_thread(revert)
        except SandboxError as exc:
            return f"not reverted, people must undo {_short(task.pushed_sha)}: {exc}"[:500]
        if sha is None:
            return f"nothing to revert on `{task.branch}`: the change is already gone"
        return (
            f"commits up to {_short(task.pushed_sha)} reverted on `{task.branch}` by {_short(sha)}"
        )

    async def _show(self, task: Task, publish: Publish) -> None:
        assert task.id is not None
        await asyncio.to_thread(self.store.tasks.update, task.id, publish=publish)

    async def _draft_pull_request(self, task: Task, policy: Failure, failure: RunFailure) -> None:
        """The work a failed task kept, as a draft pull request that says it is not ready,
        when the policy keeps work that way; an open pull request of the branch is left as
        it is (its check run says the run failed)."""
        if policy.keep != "draft_pr" or not failure.kind.leaves_work:
            return
        if task.pushed_sha is None or task.is_pull_request or task.id is None:
            return
        repo = repo_of(task)
        try:
            if await self.github.pulls.find_open_pull(repo=repo, head_branch=task.branch):
                return
            issue = await self.github.issues.get_issue(repo=repo, number=task.issue_number)
            facts = await asyncio.to_thread(stored_facts, self.store, task)
            body = draft_pull_request_body(
                issue_number=task.issue_number,
                task_name=task.task_name,
                reason=f"{describe(failure.kind)}: {failure.message}",
                facts=facts,
            )
            title = f"[bosun/{task.task_name}] {' '.join(issue.title.split())} (not ready)"
            pull = await self.github.pulls.create_pull(
                repo=repo,
                title=title[:250],
                head=task.branch,
                base=task.base_branch,
                body=body,
                draft=True,
            )
        except GitHubError as exc:
            log.warning("draft pull request not opened", task_id=task.id, error=str(exc))
            return
        kept = self.identity.audit(task, "task.kept_as_draft", {"pr": pull.number})
        await asyncio.to_thread(self.store.tasks.update, task.id, audit=kept, pr_number=pull.number)

    async def _failed_check_run(self, task: Task) -> None:
        """`bosun/task` fails on the branch's head, if the branch is there: an earlier green
        check of an agent's pull request must not stand for a run that failed."""
        try:
            head = await branch_head(self.github, task)
        except GitHubError as exc:
            log.warning("failed check run not posted", task_id=task.id, error=str(exc))
            return
        if head is not None:
            failed = check(head_sha=head, conclusion="failure", title="Task failed")
            await self._show(task, Publish(check=failed))


async def hand_over(
    github: GitHubClient, task: Task, escalate: Escalate, *, reason: str, key: str
) -> None:
    """Label the issue and post a new comment that mentions the owners the policy names; `key`
    tells this hand-over from another (a new comment each, so that the owners are notified)."""
    repo = repo_of(task)
    await github.issues.add_labels(
        repo=repo, issue_number=task.issue_number, labels=[escalate.label]
    )
    body = hand_over_comment(
        task_name=task.task_name,
        reason=reason,
        label=escalate.label,
        mentions=escalate.mention,
        branch=task.branch,
    )
    await github.issues.create_comment(
        repo=repo,
        issue_number=task.issue_number,
        body=body,
        marker=marker("hand-over", f"task={task.id} {key}"),
    )


def _capped(fields: dict[str, Any]) -> dict[str, Any]:
    fields["reason"] = str(fields["reason"])[:2000]
    return fields


def _seconds(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m {whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _short(sha: str | None) -> str:
    return f"`{(sha or '')[:7]}`"
