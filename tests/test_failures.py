"""The failure policy's decision and stuck detection, as plain functions over plain data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config.models import Failure, Stuck
from bot.core.failures import Action, Attempts, FailureKind, decide
from bot.core.progress import ProgressWatch
from bot.core.task_states import TaskState
from bot.store import Store
from tests.events import new_task
from tests.fakeclock import FakeClock


def policy(**fields: object) -> Failure:
    return Failure.model_validate(fields)


def attempts(
    made: int, allowed: int = 2, *, tier: str = "small", escalated: bool = False
) -> Attempts:
    return Attempts(made=made, allowed=allowed, tier_used=tier, escalated=escalated)


def test_a_retryable_failure_with_attempts_left_is_retried_after_a_growing_backoff() -> None:
    rules = policy(retry={"attempts": 3, "backoff_seconds": 30, "backoff_multiplier": 2})
    delays = [
        decide(rules, FailureKind.AGENT_ERROR, attempts(n, 4)).delay_seconds for n in (1, 2, 3)
    ]
    assert delays == [30.0, 60.0, 120.0]
    assert decide(rules, FailureKind.STUCK, attempts(1, 4)).action == Action.RETRY
    # A lost worker is Bosun's fault, not the run's: no wait.
    lost = decide(rules, FailureKind.WORKER_LOST, attempts(1, 4))
    assert (lost.action, lost.delay_seconds) == (Action.RETRY, 0.0)


@pytest.mark.parametrize(
    "kind", [FailureKind.BUDGET, FailureKind.INVALID_TASK, FailureKind.REFUSED]
)
def test_failures_that_a_new_sample_cannot_fix_skip_the_retries(kind: FailureKind) -> None:
    decision = decide(policy(retry={"attempts": 5}, then="abandon"), kind, attempts(1, 6))
    assert decision.action == Action.ABANDON


@pytest.mark.parametrize(
    ("then", "action"), [("abandon", Action.ABANDON), ("rollback", Action.ROLLBACK)]
)
def test_after_the_last_retry_the_final_action_is_the_policys(then: str, action: Action) -> None:
    assert decide(policy(then=then), FailureKind.AGENT_ERROR, attempts(2)).action == action


def test_escalation_runs_once_on_the_higher_tier_then_hands_over() -> None:
    rules = policy(then="escalate", escalate={"tier": "large"})
    first = decide(rules, FailureKind.STEP_LIMIT, attempts(2))
    assert (first.action, first.tier) == (Action.ESCALATE_TIER, "large")
    after = decide(rules, FailureKind.STEP_LIMIT, attempts(3, 3, tier="large", escalated=True))
    assert after.action == Action.HAND_OVER
    # Already on the escalation tier, or a failure no model can fix: straight to people.
    assert (
        decide(rules, FailureKind.AGENT_ERROR, attempts(2, tier="large")).action == Action.HAND_OVER
    )
    assert decide(rules, FailureKind.BUDGET, attempts(1)).action == Action.HAND_OVER
    assert decide(rules, FailureKind.PUSH_REFUSED, attempts(2)).action == Action.HAND_OVER
    assert decide(policy(), FailureKind.AGENT_ERROR, attempts(2)).action == Action.HAND_OVER


@given(
    kind=st.sampled_from(FailureKind),
    made=st.integers(1, 12),
    retries=st.integers(0, 10),
    escalated=st.booleans(),
    then=st.sampled_from(["escalate", "abandon", "rollback"]),
)
def test_a_task_never_runs_past_its_attempts_or_escalates_twice(
    kind: FailureKind, made: int, retries: int, escalated: bool, then: str
) -> None:
    rules = policy(retry={"attempts": retries}, then=then, escalate={"tier": "large"})
    decision = decide(rules, kind, attempts(made, 1 + retries, escalated=escalated))
    if decision.action == Action.RETRY:
        assert made < 1 + retries and kind.retryable and not escalated
    if decision.action == Action.ESCALATE_TIER:
        assert not escalated and then == "escalate"
    assert decision.delay_seconds >= 0


def watch(**rules: object) -> ProgressWatch:
    return ProgressWatch(rules=Stuck.model_validate(rules), started=0.0, fingerprint="tree-0")


def test_the_same_tool_call_repeated_is_stuck_but_different_arguments_are_not() -> None:
    progress = watch(repeated_tool_calls=3, steps_without_change=None)
    read = ('read_file({"path": "a.py"})',)
    other = ('read_file({"path": "b.py"})',)
    assert progress.step(calls=read, fingerprint="tree-0", now=1) is None
    assert progress.step(calls=read, fingerprint="tree-0", now=2) is None
    assert progress.step(calls=other, fingerprint="tree-0", now=3) is None
    assert progress.step(calls=other, fingerprint="tree-0", now=4) is None
    stuck = progress.step(calls=other, fingerprint="tree-0", now=5)
    assert stuck is not None and "3 times in a row" in stuck


def test_a_worktree_left_unchanged_for_too_many_steps_is_stuck() -> None:
    progress = watch(repeated_tool_calls=None, steps_without_change=3)
    for step, tree in enumerate(["tree-0", "tree-0", "tree-1", "tree-1", "tree-1"], start=1):
        stuck = progress.step(calls=(f"call-{step}",), fingerprint=tree, now=step)
        assert stuck is None, step
    stuck = progress.step(calls=("call-6",), fingerprint="tree-1", now=6)
    assert stuck == "the worktree did not change for 3 steps"


def test_the_final_answer_is_never_judged_and_silence_is_measured_from_the_last_step() -> None:
    progress = watch(repeated_tool_calls=2, steps_without_change=1, silent_seconds=60)
    assert progress.silence_left(10) == 50
    assert progress.step(calls=(), fingerprint="tree-0", now=30) is None
    assert progress.silence_left(40) == 50
    assert watch(silent_seconds=None).silence_left(10_000) is None


def test_a_retry_is_not_a_candidate_before_its_backoff_is_over(
    store: Store, clock: FakeClock
) -> None:
    new = new_task()
    task = store.tasks.create(new)
    assert task is not None and task.id is not None
    store.tasks.claim(task.id, lock_key="k", holder="w", ttl=60)
    later = clock.now() + timedelta(seconds=90)
    assert store.tasks.finish_run(
        task.id, TaskState.QUEUED, lock_key="k", holder="w", not_before=later
    )
    assert store.tasks.queued_candidates(limit=10) == []
    clock.advance(91)
    assert [row[0] for row in store.tasks.queued_candidates(limit=10)] == [task.id]
