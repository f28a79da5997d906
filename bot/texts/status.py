"""The status comment: one per issue and task, found by a hidden marker, edited in place."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.texts.facts import RunFacts, cost_line


class Phase(enum.StrEnum):
    HELD = "held"
    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    PR_OPENED = "pr_opened"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRYING = "retrying"
    DONE = "done"
    ABANDONED = "abandoned"
    ESCALATING = "escalating"
    HANDED_OVER = "handed_over"
    ROLLED_BACK = "rolled_back"


def status_marker(*, issue_number: int, task_name: str) -> str:
    """Hidden in the status comment so that a re-run finds and edits the same one."""
    return f"<!-- bosun:status issue={issue_number} task={task_name} -->"


@dataclass(frozen=True, kw_only=True)
class StatusView:
    issue_number: int
    task_name: str
    branch: str
    triggered_by: str
    phase: Phase
    reason: str = ""
    pr_number: int | None = None
    pr_url: str = ""
    facts: RunFacts = field(default_factory=RunFacts)
    mentions: tuple[str, ...] = ()  # the owners a hand-over calls on
    task_id: int | None = None  # for `bosun task show`, in the lines of an ended run
    undone: tuple[str, ...] = ()  # what a rollback took back


HEADLINES = {
    Phase.HELD: "**Held** `{task}` until someone allows it: {reason}",
    Phase.WAITING: "**Waiting**: `{task}` starts from the base branch once the pull request of "
    "each task it depends on is merged for this issue. Still to merge: {reason}. "
    "Remove the label to cancel.",
    Phase.QUEUED: "**Queued** `{task}` on branch `{branch}`, triggered by @{user}. "
    "Remove the label to cancel.",
    Phase.RUNNING: "**Running** `{task}` on branch `{branch}` (attempt {attempt} of {attempts}).",
    Phase.PR_OPENED: "**Pull request #{pr} is ready for review** for `{task}`.",
    Phase.FAILED: "**`{task}` failed**: {reason}",
    Phase.CANCELLED: "**`{task}` was cancelled**: {reason}",
    Phase.RETRYING: "**`{task}` will be retried**: {reason}",
    Phase.DONE: "**Done**: `{task}`'s pull request #{pr} was merged.",
    Phase.ABANDONED: "**`{task}` was abandoned**: {reason}",
    Phase.ESCALATING: "**`{task}` runs again on a stronger model**: {reason}",
    Phase.HANDED_OVER: "**`{task}` needs a person**: {reason}",
    Phase.ROLLED_BACK: "**`{task}` failed and was rolled back**: {reason}",
}
KEPT_PHASES = (Phase.FAILED, Phase.HANDED_OVER)
ENDED_PHASES = (
    Phase.PR_OPENED,
    Phase.FAILED,
    Phase.CANCELLED,
    Phase.HANDED_OVER,
    Phase.ROLLED_BACK,
)


def status_comment(view: StatusView) -> str:
    facts = view.facts
    headline = HEADLINES[view.phase].format(
        task=view.task_name,
        branch=view.branch,
        user=view.triggered_by,
        attempt=facts.attempts,
        attempts=facts.max_attempts,
        pr=view.pr_number,
        reason=view.reason or "no reason recorded",
    )
    lines = [status_marker(issue_number=view.issue_number, task_name=view.task_name), headline]
    if view.undone:
        lines += ["", "Taken back:", *(f"- {item}" for item in view.undone)]
    if view.mentions:
        lines += ["", "Owners: " + " ".join(f"@{owner}" for owner in view.mentions)]
    if view.phase in KEPT_PHASES and view.pr_number is not None:
        lines += ["", f"The work so far is kept in draft pull request #{view.pr_number}."]
    if view.phase in ENDED_PHASES and facts.attempts:
        lines += ["", f"Cost: {cost_line(facts)} · attempts {facts.attempts}"]
        if facts.audit_id is not None:
            lines[-1] += f" · audit {facts.audit_id}"
        if view.task_id is not None:
            lines += [
                f"Each step, with its output: the `bosun/task` check run, and "
                f"`bosun task show {view.task_id}`."
            ]
    lines += ["", "<sub>Bosun edits this comment as the task moves.</sub>"]
    return "\n".join(lines)


def status_table(tasks: Sequence[Any]) -> str:
    """The reply to `/bosun status`: every task of the issue, newest last."""
    if not tasks:
        return "No Bosun task has run on this issue."
    rows = [
        f"| `{task.task_name}` | {task.state} | {task.attempts} of {task.max_attempts} | "
        f"${task.cost_usd:.4f} | {f'#{task.pr_number}' if task.pr_number else '-'} |"
        for task in tasks
    ]
    header = "| task | state | attempts | cost | pull request |\n|---|---|---|---|---|"
    return "\n".join([header, *rows])
