"""Publishing a task's state to GitHub, each write a create-or-update of a stable identity."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from bot.core.errors import GitHubError
from bot.core.paths import matching
from bot.github.client import GitHubClient, Repo
from bot.store import Store
from bot.store.tables import Task
from bot.texts.check_run import CHECK_NAME, check_run_summary
from bot.texts.facts import RunFacts
from bot.texts.status import StatusView, status_comment

Conclusion = Literal["success", "failure", "cancelled", "neutral"]
READY_TITLE = "Agent change ready for review"


def refused_paths(changed: list[str], protected: list[str]) -> list[str]:
    """Changed paths that no agent may push: the policy's protected paths."""
    return matching(changed, protected)


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
                await self._github.update_comment(
                    repo=self._repo, comment_id=self._comment_id, body=body
                )
                return
            except GitHubError as exc:
                if exc.status_code != 404:  # deleted by someone: find or post it again
                    raise
        marker = body.splitlines()[0]
        found = await self._github.find_comment(
            repo=self._repo, issue_number=self._task.issue_number, marker=marker
        )
        if found is not None:
            self._comment_id = int(found["id"])
            await self._github.update_comment(
                repo=self._repo, comment_id=self._comment_id, body=body
            )
        else:
            self._comment_id = await self._github.create_comment(
                repo=self._repo, issue_number=self._task.issue_number, body=body
            )
        await asyncio.to_thread(
            self._store.update_task, self._task_id, status_comment_id=self._comment_id
        )

    async def pull_request(self, *, title: str, body: str) -> dict[str, Any]:
        """The one open pull request from the task's branch: reused and updated, or opened."""
        existing = await self._github.find_open_pull(repo=self._repo, head_branch=self._task.branch)
        if existing is not None:
            return await self._github.update_pull(
                repo=self._repo, number=int(existing["number"]), title=title, body=body
            )
        return await self._github.create_pull(
            repo=self._repo,
            title=title,
            head=self._task.branch,
            base=self._task.base_branch,
            body=body,
        )

    async def check_run(
        self, *, head_sha: str, conclusion: Conclusion, title: str, facts: RunFacts
    ) -> int:
        """`bosun/task` on the head commit: one per commit, updated when the task runs again."""
        summary = check_run_summary(facts, outcome=conclusion)
        existing = await self._github.find_check_run(
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
            check_run_id = int(existing["id"])
            await self._github.update_check_run(
                repo=self._repo, check_run_id=check_run_id, **fields
            )
        else:
            created = await self._github.create_check_run(
                repo=self._repo, name=CHECK_NAME, head_sha=head_sha, **fields
            )
            check_run_id = int(created["id"])
        await asyncio.to_thread(
            self._store.update_task, self._task_id, check_run_id=check_run_id, head_sha=head_sha
        )
        return check_run_id


def repo_of(task: Task) -> Repo:
    owner, _, name = task.repo_full_name.partition("/")
    return Repo(installation_id=task.installation_id, owner=owner, name=name)


async def branch_head(github: GitHubClient, task: Task) -> str | None:
    """The head of the task's branch on GitHub; None when the branch is not there."""
    try:
        return await github.get_branch_sha(repo=repo_of(task), branch=task.branch)
    except GitHubError as exc:
        if exc.status_code == 404:
            return None
        raise


def stored_facts(store: Store, task: Task) -> RunFacts:
    """A finished run's facts as the store recorded them; it blocks, so run it in a thread."""
    assert task.id is not None
    started = store.last_audit(task.id, "task.started")
    duration = None
    if task.started_at is not None and task.finished_at is not None:
        duration = task.finished_at - task.started_at
    return RunFacts(
        models=tuple(dict.fromkeys(call.model for call in store.model_calls(task.id))),
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
    }
    fields.update(overrides)
    return StatusView(**fields)
