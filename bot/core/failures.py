"""Failure kinds and the failure policy's decision: retry, escalate, abandon or roll back.

Plain data and one pure function, so every branch of the policy can be tested directly; the
worker and the scheduler turn a `Decision` into state changes and GitHub writes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.config.models import Failure
from bot.core.errors import BosunError


class FailureKind(enum.StrEnum):
    """Why a run failed, in the kinds that decide what happens next."""

    AGENT_ERROR = "agent_error"  # the model failed, or the agent's loop broke
    STEP_LIMIT = "step_limit"  # the agent used every step without a final answer
    SANDBOX_TIMEOUT = "sandbox_timeout"  # the run outlived the agent's wall-clock limit
    BUDGET = "budget"  # the task's budget is spent
    STUCK = "stuck"  # repeated tool calls, an unchanged worktree, or silence
    REFUSED = "refused"  # the change broke a rule: protected path, scope, or no change
    SETUP_FAILED = "setup_failed"  # a setup command failed: the environment, not the agent
    VERIFY_FAILED = "verify_failed"  # the project's own checks failed on the agent's change
    PUSH_REFUSED = "push_refused"  # git refused the push
    GITHUB_ERROR = "github_error"  # GitHub failed to answer (after the client's own retries)
    WORKER_LOST = "worker_lost"  # the worker died or lost its lease
    INVALID_TASK = "invalid_task"  # the task's config is not usable: people must fix it
    INTERNAL = "internal"  # a fault in Bosun itself

    @property
    def retryable(self) -> bool:
        """Whether the same run again may succeed. A spent budget stays spent, a broken config
        stays broken, and a change that broke a rule is for people (or a stronger model) to
        judge, not to be sampled again; anything else may be a bad moment or a bad sample."""
        return self not in (FailureKind.BUDGET, FailureKind.INVALID_TASK, FailureKind.REFUSED)

    @property
    def a_stronger_model_may_help(self) -> bool:
        """Whether escalating to a higher tier makes sense: only for the agent's own work. A
        rule broken (scope, protected paths) is the rule's to change, not a model's to try."""
        return self in (
            FailureKind.AGENT_ERROR,
            FailureKind.STEP_LIMIT,
            FailureKind.SANDBOX_TIMEOUT,
            FailureKind.STUCK,
            FailureKind.VERIFY_FAILED,
        )

    @property
    def leaves_work(self) -> bool:
        """Whether the run's change is worth keeping for people or the next attempt: the
        agent worked and broke no rule, it only did not finish or did not pass."""
        return self in (
            FailureKind.AGENT_ERROR,
            FailureKind.STEP_LIMIT,
            FailureKind.SANDBOX_TIMEOUT,
            FailureKind.STUCK,
            FailureKind.BUDGET,
            FailureKind.VERIFY_FAILED,
        )


class Action(enum.StrEnum):
    RETRY = "retry"  # queue the task again after the backoff
    ESCALATE_TIER = "escalate_tier"  # queue it once more on the escalation tier
    HAND_OVER = "hand_over"  # stop, label the issue, mention the owners
    ABANDON = "abandon"  # stop, release the locks, say why
    ROLLBACK = "rollback"  # stop and undo what Bosun published for the task


@dataclass(frozen=True)
class RunFailure:
    """A failed run: its kind and what people should read about it."""

    kind: FailureKind
    message: str
    output: str = ""  # what failed, as the next attempt should see it (a command's output)


class RunFailed(BosunError):
    """A run failed in a known way, raised where it is found; the failure policy decides
    what happens next."""

    def __init__(self, kind: FailureKind, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.failure = RunFailure(kind, message, output)


@dataclass(frozen=True)
class Decision:
    action: Action
    delay_seconds: float = 0.0
    tier: str | None = None  # the tier of the next run, for ESCALATE_TIER


@dataclass(frozen=True)
class Attempts:
    """Where a task stands: attempts made, allowed, and the escalation already taken."""

    made: int
    allowed: int
    tier_used: str | None
    escalated: bool


def decide(policy: Failure, kind: FailureKind, attempts: Attempts) -> Decision:
    """What the policy says to do after a run failed with `kind`."""
    if kind.retryable and attempts.made < attempts.allowed and not attempts.escalated:
        # A lost worker is Bosun's failure, not the run's: its retry starts at once.
        delay = 0.0 if kind == FailureKind.WORKER_LOST else backoff(policy, attempts.made)
        return Decision(Action.RETRY, delay_seconds=delay)
    if policy.then == "abandon":
        return Decision(Action.ABANDON)
    if policy.then == "rollback":
        return Decision(Action.ROLLBACK)
    return escalation(policy, kind, attempts)


def escalation(policy: Failure, kind: FailureKind, attempts: Attempts) -> Decision:
    """The next rung of the escalation ladder: a run on the higher tier, then people."""
    tier = policy.escalate.tier
    if (
        tier is not None
        and not attempts.escalated
        and tier != attempts.tier_used
        and kind.a_stronger_model_may_help
    ):
        return Decision(Action.ESCALATE_TIER, tier=tier)
    return Decision(Action.HAND_OVER)


def backoff(policy: Failure, attempts_made: int) -> float:
    """Seconds to wait before the retry that follows attempt `attempts_made` (1-based)."""
    retry = policy.retry
    return float(retry.backoff_seconds * retry.backoff_multiplier ** max(0, attempts_made - 1))


_WORDS = {
    FailureKind.AGENT_ERROR: "agent error",
    FailureKind.STEP_LIMIT: "step limit",
    FailureKind.SANDBOX_TIMEOUT: "sandbox timeout",
    FailureKind.BUDGET: "budget spent",
    FailureKind.STUCK: "stuck",
    FailureKind.REFUSED: "refused",
    FailureKind.SETUP_FAILED: "setup failed",
    FailureKind.VERIFY_FAILED: "verification failed",
    FailureKind.PUSH_REFUSED: "push refused",
    FailureKind.GITHUB_ERROR: "GitHub error",
    FailureKind.WORKER_LOST: "worker lost",
    FailureKind.INVALID_TASK: "invalid task",
    FailureKind.INTERNAL: "internal error",
}


def describe(kind: FailureKind) -> str:
    """The kind in words, as the status comment shows it."""
    return _WORDS[kind]
