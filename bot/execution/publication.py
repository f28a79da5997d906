"""What GitHub shows for a task: written by stable identity, and published until it shows it.

State changes record what GitHub should show (a `Publish`) in the same transaction. The
`Publisher` then shows it: one status comment per issue and task, one `bosun/task` check run
per commit. A GitHub failure is not lost: the task stays unpublished, and the reconcile loop
publishes it again, with backoff, until GitHub shows what the store says.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import structlog

from bot.core.clock import Clock
from bot.core.errors import GitHubError
from bot.github.client import GitHubClient
from bot.github.types import PullRequest, Repo
from bot.store import Publish, Store
from bot.store.tables import Task, TranscriptStep
from bot.texts.check_run import CHECK_NAME, check_run_summary
from bot.texts.facts import RunFacts
from bot.texts.status import Phase, StatusView, status_comment
from bot.texts.transcript import StepLine

log = structlog.get_logger("bosun.publish")

Conclusion = Literal["success", "failure", "cancelled", "neutral"]
READY_TITLE = "Agent change ready for review"
SETTLE = timedelta(seconds=10)  # how long the in-line publish has before the loop takes over
MAX_RETRY = timedelta(minutes=5)
SYNC_TRIES = 3  # a publication overtaken by a newer one is published again this often


def status(
    phase: Phase,
    *,
    reason: str | None = None,
    mentions: tuple[str, ...] = (),
    undone: tuple[str, ...] = (),
) -> Publish:
    """The status comment a task should show: its phase, and what the phase names."""
    view: dict[str, Any] = {"phase": phase.value}
    if reason is not None:
        view["reason"] = reason
    if mentions:
        view["mentions"] = list(mentions)
    if undone:
        view["undone"] = list(undone)
    return Publish(status=view)


def check(
    *,
    head_sha: str,
    conclusion: Conclusion,
    title: str,
    approvals: int | None = None,
    required_approvals: int = 0,
) -> dict[str, Any]:
    """The `bosun/task` check run a task should show on `head_sha`."""
    return {
        "head_sha": head_sha,
        "conclusion": conclusion,
        "title": title,
        "approvals": approvals,
        "required_approvals": required_approvals,
    }


def with_check(publish: Publish | None, check_view: dict[str, Any]) -> Publish:
    return dataclasses.replace(publish or Publish(), check=check_view)


class Reporter:
    """One task's status comment, pull request and check run, found again on every re-run."""

    def __init__(self, *, github: GitHubClient, store: Store, repo: Repo, task: Task) -> None:
        assert task.id is not None
        self._github = github
        self._store = store
        self._repo = repo
        self._task = task
        self._task_id: int = task.id
        self._comment_id = task.status_comment_id

    async def status(self, view: StatusView) -> None:
        """Edit the issue's one status comment for this task, creating it the first time."""
        body = status_comment(view)
        if self._comment_id is not None:
            try:
                await self._github.issues.update_comment(
                    repo=self._repo, comment_id=self._comment_id, body=body
                )
                return
            except GitHubError as exc:
                if exc.status_code != 404:  # deleted by someone: find or post it again
                    raise
        marker = body.splitlines()[0]
        found = await self._github.issues.find_comment(
            repo=self._repo, issue_number=self._task.issue_number, marker=marker
        )
        if found is not None:
            self._comment_id = found.id
            await self._github.issues.update_comment(
                repo=self._repo, comment_id=self._comment_id, body=body
            )
        else:
            self._comment_id = await self._github.issues.create_comment(
                repo=self._repo, issue_number=self._task.issue_number, body=body, marker=marker
            )
        await asyncio.to_thread(
            self._store.tasks.update, self._task_id, status_comment_id=self._comment_id
        )

    async def pull_request(self, *, title: str, body: str) -> PullRequest:
        """The one open pull request from the task's branch: reused and updated, or opened."""
        existing = await self._github.pulls.find_open_pull(
            repo=self._repo, head_branch=self._task.branch
        )
        if existing is not None:
            return await self._github.pulls.update_pull(
                repo=self._repo, number=existing.number, title=title, body=body
            )
        return await self._github.pulls.create_pull(
            repo=self._repo,
            title=title,
            head=self._task.branch,
            base=self._task.base_branch,
            body=body,
        )

    async def check_run(
        self,
        *,
        head_sha: str,
        conclusion: Conclusion,
        title: str,
        facts: RunFacts,
        steps: Sequence[StepLine] = (),
    ) -> int:
        """`bosun/task` on the head commit: one per commit, updated when the task runs again.
        `steps` are the run's transcript: the verification results and a table of steps."""
        checks = [step for step in steps if step.phase == "verify"]
        summary = check_run_summary(
            facts, outcome=conclusion, checks=checks, steps=steps, task_id=self._task_id
        )
        existing = await self._github.checks.find_check_run(
            repo=self._repo, head_sha=head_sha, name=CHECK_NAME
        )
        fields: dict[str, Any] = {
            "status": "completed",
            "conclusion": conclusion,
            "title": title,
            "summary": summary,
            "external_id": f"bosun-task-{self._task_id}",
        }
        if existing is not None:
            check_run_id = existing.id
            await self._github.checks.update_check_run(
                repo=self._repo, check_run_id=check_run_id, **fields
            )
        else:
            created = await self._github.checks.create_check_run(
                repo=self._repo, name=CHECK_NAME, head_sha=head_sha, **fields
            )
            check_run_id = created.id
        await asyncio.to_thread(self._store.tasks.update, self._task_id, check_run_id=check_run_id)
        return check_run_id


class Publisher:
    """Shows on GitHub what the store says each task should show, and keeps trying."""

    def __init__(self, *, github: GitHubClient, store: Store, clock: Clock) -> None:
        self._github = github
        self._store = store
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}

    async def sync(self, task_id: int) -> bool:
        """Publish what the task should show; False when GitHub failed, and then the reconcile
        loop publishes it later. Never raises for GitHub's sake: the state is already kept."""
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        try:
            async with lock:
                return await self._sync(task_id)
        except GitHubError as exc:
            task = await asyncio.to_thread(self._store.tasks.get, task_id)
            failures = task.publish_failures if task is not None else 0
            retry_in = min(MAX_RETRY, timedelta(seconds=5 * 2**failures))
            log.warning(
                "publish failed", task_id=task_id, error=str(exc), retry_in=retry_in.seconds
            )
            await asyncio.to_thread(self._store.tasks.publish_failed, task_id, retry_in=retry_in)
            return False
        finally:
            if not lock.locked():
                self._locks.pop(task_id, None)

    async def sync_due(self, *, limit: int = 50) -> int:
        """One reconcile pass: publish the tasks GitHub does not show as the store says."""
        settled = self._clock.now() - SETTLE
        due = await asyncio.to_thread(
            self._store.tasks.unpublished, limit=limit, settled_before=settled
        )
        for task in due:
            assert task.id is not None
            await self.sync(task.id)
        return len(due)

    async def _sync(self, task_id: int) -> bool:
        overtaken = False
        for _ in range(SYNC_TRIES):
            task = await asyncio.to_thread(self._store.tasks.get, task_id)
            if task is None:
                return True
            # A publication overtaken meanwhile may have written over a newer one: show the
            # latest again, even if it is marked as shown.
            show_status = task.status_view is not None and (
                overtaken or task.status_synced < task.status_revision
            )
            show_check = task.check_view is not None and (
                overtaken or task.check_synced < task.check_revision
            )
            if not (show_status or show_check):
                return True
            await self._show(task, status_view=show_status, check_view=show_check)
            if await asyncio.to_thread(
                self._store.tasks.mark_published,
                task_id,
                status_revision=task.status_revision if show_status else None,
                check_revision=task.check_revision if show_check else None,
            ):
                return True
            overtaken = True
        return False

    async def _show(self, task: Task, *, status_view: bool, check_view: bool) -> None:
        assert task.id is not None
        facts = await asyncio.to_thread(stored_facts, self._store, task)
        rows = await asyncio.to_thread(
            self._store.transcripts.for_task, task.id, attempt=task.attempts
        )
        reporter = Reporter(github=self._github, store=self._store, repo=repo_of(task), task=task)
        if status_view and task.status_view is not None:
            await reporter.status(status_view_of(task, facts))
        if check_view and task.check_view is not None:
            shown = task.check_view
            counted = dataclasses.replace(
                facts,
                approvals=shown.get("approvals"),
                required_approvals=int(shown.get("required_approvals") or 0),
            )
            await reporter.check_run(
                head_sha=str(shown["head_sha"]),
                conclusion=shown["conclusion"],
                title=str(shown["title"]),
                facts=counted,
                steps=step_lines(rows),
            )


def status_view_of(task: Task, facts: RunFacts) -> StatusView:
    """The status comment as the store says it should read."""
    shown = task.status_view or {}
    overrides: dict[str, Any] = {"phase": Phase(shown["phase"]), "facts": facts}
    if "reason" in shown:
        overrides["reason"] = str(shown["reason"])
    overrides["mentions"] = tuple(shown.get("mentions") or ())
    overrides["undone"] = tuple(shown.get("undone") or ())
    return view_of(task, **overrides)


def repo_of(task: Task) -> Repo:
    owner, _, name = task.repo_full_name.partition("/")
    return Repo(installation_id=task.installation_id, owner=owner, name=name)


async def branch_head(github: GitHubClient, task: Task) -> str | None:
    """The head of the task's branch on GitHub; None when the branch is not there."""
    try:
        return await github.repos.get_branch_sha(repo=repo_of(task), branch=task.branch)
    except GitHubError as exc:
        if exc.status_code == 404:
            return None
        raise


def stored_facts(store: Store, task: Task) -> RunFacts:
    """A run's facts as the store recorded them; it blocks, so run it in a thread."""
    assert task.id is not None
    started = store.audit.last(task.id, "task.started")
    duration = None
    if task.started_at is not None and task.finished_at is not None:
        duration = task.finished_at - task.started_at
    calls = store.model_calls.for_task(task.id)
    return RunFacts(
        models=tuple(dict.fromkeys(call.model for call in calls)),
        tokens_in=task.tokens_in,
        tokens_out=task.tokens_out,
        cost_usd=task.cost_usd,
        duration=duration,
        attempts=task.attempts,
        max_attempts=task.max_attempts,
        audit_id=started.id if started is not None else None,
        sandbox=str(started.detail.get("sandbox") or "") if started is not None else "",
    )


def view_of(task: Task, **overrides: Any) -> StatusView:
    """The status comment's content for a task as the store knows it."""
    fields: dict[str, Any] = {
        "issue_number": task.issue_number,
        "task_name": task.task_name,
        "branch": task.branch,
        "triggered_by": task.triggered_by,
        "reason": task.reason or "",
        "pr_number": task.pr_number,
        "task_id": task.id,
    }
    fields.update(overrides)
    return StatusView(**fields)


def step_lines(rows: Sequence[TranscriptStep]) -> list[StepLine]:
    """A transcript's rows as the texts show them."""
    return [
        StepLine(
            attempt=row.attempt,
            phase=row.phase,
            name=row.name,
            ok=row.ok,
            exit_code=row.exit_code,
            duration_ms=row.duration_ms,
            output=row.output,
            arguments=row.arguments,
        )
        for row in rows
    ]
