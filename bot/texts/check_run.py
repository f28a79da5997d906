"""The `bosun/task` check run's summary table."""

from __future__ import annotations

from bot.texts.facts import RunFacts, duration

CHECK_NAME = "bosun/task"


def check_run_summary(facts: RunFacts, *, outcome: str) -> str:
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
    return f"| | |\n|---|---|\n{table}"


def _approvals(facts: RunFacts) -> str:
    if facts.approvals is None:
        return "-"
    return f"{facts.approvals} of {facts.required_approvals} required"
