"""What a run cost and did, as the texts show it: figures, durations, the cost line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


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


def duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def cost_line(facts: RunFacts) -> str:
    return (
        f"${facts.cost_usd:.4f} · {facts.tokens_in:,} tokens in, {facts.tokens_out:,} out · "
        f"{duration(facts.duration)}"
    )
