"""Stuck detection: a run that repeats itself, changes nothing, or goes silent is stopped.

`ProgressWatch` is plain data fed one step at a time (the worker adds the worktree's
fingerprint and the clock), so each rule can be tested without running an agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config.models import Stuck


@dataclass
class ProgressWatch:
    """Counts, step by step, how long a run has repeated itself or left the worktree as it was.

    `fingerprint` is the worktree's content id before the first step."""

    rules: Stuck
    started: float
    fingerprint: str
    last_step_at: float = field(init=False)
    _last_calls: tuple[str, ...] = field(default=(), init=False)
    _repeats: int = field(default=0, init=False)
    _unchanged: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.last_step_at = self.started

    def step(self, *, calls: tuple[str, ...], fingerprint: str, now: float) -> str | None:
        """Take one finished step; the reason the run is stuck, or None while it progresses."""
        self.last_step_at = now
        if not calls:  # the final answer: the run ends on its own
            return None
        self._repeats = self._repeats + 1 if calls and calls == self._last_calls else 1
        self._last_calls = calls
        self._unchanged = self._unchanged + 1 if fingerprint == self.fingerprint else 0
        self.fingerprint = fingerprint
        repeated, unchanged = self.rules.repeated_tool_calls, self.rules.steps_without_change
        if repeated is not None and self._repeats >= repeated:
            shown = ", ".join(calls)[:200]
            return f"the agent made the same tool call {self._repeats} times in a row: {shown}"
        if unchanged is not None and self._unchanged >= unchanged:
            return f"the worktree did not change for {self._unchanged} steps"
        return None

    def silence_left(self, now: float) -> float | None:
        """Seconds until the run counts as silent; None when silence is allowed."""
        if self.rules.silent_seconds is None:
            return None
        return self.rules.silent_seconds - (now - self.last_step_at)
