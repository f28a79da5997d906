"""What Bosun writes where people read it: the status comment and the `bosun/task` check run."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


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


CHECK_NAME = "bosun/task"


def status_marker(*, issue_number: int, task_name: str) -> str:
    """Hidden in the status comment so that a re-run finds and edits the same one."""
    return f"<!-- bosun:status issue={issue_number} task={task_name} -->"


@dataclass(frozen=True, kw_only=True)
class RunFacts:
    """What a run cost and did, for people: every figure comes from the store."""

    models: tuple[str, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration: timedelta | None = None
    attempts: int = 0
    max_attempts: int = 0
    audit_id: int | None = None
    files_changed: tuple[str, ...] = field(default_factory=tuple)
    sandbox: str = ""
    approvals: int | None = None  # counted approvals of the head commit; None: not counted
    required_approvals: int = 0


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
    facts: RunFacts = RunFacts()
    mentions: tuple[str, ...] = ()  # the owners a hand-over calls on
    undone: tuple[str, ...] = ()  # what a rollback took back


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def cost_line(facts: RunFacts) -> str:
    return (
        f"${facts.cost_usd:.4f} · {facts.tokens_in:,} tokens in, {facts.tokens_out:,} out · "
        f"{_duration(facts.duration)}"
    )


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
    if view.phase in ENDED_PHASES and facts.attempts:
        lines += ["", f"Cost: {cost_line(facts)} · attempts {facts.attempts}"]
        if facts.audit_id is not None:
            lines[-1] += f" · audit {facts.audit_id}"
    lines += ["", "<sub>Bosun edits this comment as the task moves.</sub>"]
    return "\n".join(lines)


def without_mentions(text: str) -> str:
    """Text from models or issues, unable to notify anyone: GitHub links no `@` followed by a
    zero-width space. A new comment or pull request would otherwise ping whoever it names."""
    return text.replace("@", "@\u200b")


def hand_over_comment(
    *, task_name: str, reason: str, label: str, mentions: Sequence[str], branch: str
) -> str:
    """A new comment, so that the owners it mentions are notified (edits notify no one)."""
    owners = " ".join(f"@{owner}" for owner in mentions) or "Maintainers"
    return "\n".join(
        [
            f"{owners}: Bosun has stopped trying `{task_name}` and hands it to you.",
            "",
            f"Why: {without_mentions(reason)}",
            "",
            f"The issue is labelled `{label}`. The branch `{branch}` is kept as the agent left "
            "it, if it exists. Push to it, or comment `/bosun retry` (with any advice for the "
            "agent below it) to run the task again.",
        ]
    )


def pull_request_body(*, issue_number: int, task_name: str, summary: str, facts: RunFacts) -> str:
    changed = "\n".join(f"- `{path}`" for path in facts.files_changed[:50]) or "- (none)"
    return "\n".join(
        [
            f"Closes #{issue_number}",
            "",
            f"Bosun ran the `{task_name}` task for this issue. What the agent says it did:",
            "",
            _quoted(without_mentions(summary or "(no summary)")),
            "",
            "Files changed:",
            changed,
            "",
            f"Cost: {cost_line(facts)}. Review it as you would any contribution: Bosun never "
            "merges without the approvals the repository's policy asks for.",
        ]
    )


def check_run_summary(facts: RunFacts, *, outcome: str) -> str:
    rows = [
        ("outcome", outcome),
        ("models", ", ".join(facts.models) or "-"),
        ("tokens", f"{facts.tokens_in:,} in / {facts.tokens_out:,} out"),
        ("cost", f"${facts.cost_usd:.4f}"),
        ("duration", _duration(facts.duration)),
        ("attempts", f"{facts.attempts} of {facts.max_attempts}"),
        ("sandbox", facts.sandbox or "-"),
        ("audit id", str(facts.audit_id) if facts.audit_id is not None else "-"),
        ("approvals", _approvals(facts)),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"| | |\n|---|---|\n{table}"


def _approvals(facts: RunFacts) -> str:
    if facts.approvals is None:
        return "-"
    return f"{facts.approvals} of {facts.required_approvals} required"


def _quoted(text: str) -> str:
    """The agent's words, shown as a quote: its text is not Bosun's to vouch for."""
    return "\n".join(f"> {line}" if line else ">" for line in text[:4000].splitlines())


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
