"""The `bosun/task` check run's summary table."""

from __future__ import annotations

from collections.abc import Sequence

from bot.texts.facts import RunFacts, duration
from bot.texts.transcript import StepLine, checks_section, steps_table

CHECK_NAME = "bosun/task"


def check_run_summary(
    facts: RunFacts,
    *,
    outcome: str,
    checks: Sequence[StepLine] = (),
    steps: Sequence[StepLine] = (),
    task_id: int | None = None,
) -> str:
    """The run at a glance, then its verification results and its steps."""
    rows = [
        ("outcome", outcome),
        ("models", ", ".join(facts.models) or "-"),
        ("tokens", f"{facts.tokens_in:,} in / {facts.tokens_out:,} out"),
        ("cost", f"${facts.cost_usd:.4f}"),
        ("duration", duration(facts.duration)),
        ("attempts", f"{facts.attempts} of {facts.max_attempts}"),
        ("sandbox", facts.sandbox or "-"),
        ("audit id", str(facts.audit_id) if facts.audit_id is not None else "-"),
        ("approvals", _approvals(facts)),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    parts = [f"| | |\n|---|---|\n{table}"]
    if checks or steps:
        parts.append(f"### Verification\n\n{checks_section(checks)}")
    if steps:
        parts.append(f"### Steps\n\n{steps_table(steps)}")
    if task_id is not None:
        parts.append(f"Every step and its output: `bosun task show {task_id}`.")
    return "\n\n".join(parts)


def _approvals(facts: RunFacts) -> str:
    if facts.approvals is None:
        return "-"
    return f"{facts.approvals} of {facts.required_approvals} required"
