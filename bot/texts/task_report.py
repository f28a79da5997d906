"""`bosun task show`: one task as a terminal shows it: its state, attempts, costs and steps."""

from __future__ import annotations

from collections.abc import Sequence

from bot.store.tables import AuditRecord, ModelCallRecord, Task
from bot.texts.transcript import StepLine, transcript


def task_report(
    task: Task,
    *,
    calls: Sequence[ModelCallRecord],
    steps: Sequence[StepLine],
    audits: Sequence[AuditRecord],
) -> str:
    head = [
        f"task {task.id}: {task.task_name} on {task.repo_full_name}#{task.issue_number}",
        f"state: {task.state}" + (f" ({task.failure_kind})" if task.failure_kind else ""),
        f"branch: {task.branch}" + (f", pull request #{task.pr_number}" if task.pr_number else ""),
        f"attempts: {task.attempts} of {task.max_attempts}"
        + (f", tier {task.tier}" if task.tier else ""),
        f"cost: ${task.cost_usd:.4f}, {task.tokens_in:,} tokens in, {task.tokens_out:,} out",
    ]
    if task.reason:
        head.append(f"reason: {task.reason}")
    model_lines = [
        f"  attempt {call.attempt}: {call.model}"
        + (f" [{call.tier}]" if call.tier else "")
        + f" {call.tokens_in:,} in / {call.tokens_out:,} out, ${call.cost_usd:.4f}"
        + (" (cache)" if call.cache_hit else "")
        + f", {call.latency_ms:.0f} ms"
        for call in calls
    ]
    audit_lines = [
        f"  {record.id} {record.at:%Y-%m-%d %H:%M:%S} {record.action} by {record.actor}"
        for record in audits
    ]
    return "\n".join(
        [
            *head,
            "",
            "model calls:",
            *(model_lines or ["  none"]),
            "",
            "steps:",
            transcript(steps),
            "",
            "audit records:",
            *(audit_lines or ["  none"]),
        ]
    )
