"""Verdicts on a finished run, as plain values: what may be pushed, kept, or neither."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.failures import FailureKind, RunFailure
from bot.core.paths import matching, outside
from bot.execution.run_plan import RunPlan
from bot.execution.verify import CheckResult
from sandbox.runtime.builtin import AgentResult, AgentStatus

# How the built-in agent's early stops map to failure kinds.
AGENT_STOPS = {
    AgentStatus.ERROR: FailureKind.AGENT_ERROR,
    AgentStatus.BUDGET: FailureKind.BUDGET,
    AgentStatus.STEP_LIMIT: FailureKind.STEP_LIMIT,
}
LISTED_PATHS = 20


def refused_paths(changed: list[str], protected: list[str]) -> list[str]:
    """Changed paths that no agent may push: the policy's protected paths."""
    return matching(changed, protected)


def rules_broken(changed: list[str], plan: RunPlan) -> RunFailure | None:
    """A change nobody may push (protected paths, outside the task's scope): kept nowhere."""
    refused = refused_paths(changed, plan.protected)
    if refused:
        return RunFailure(
            FailureKind.REFUSED,
            f"nothing was pushed: the change touches protected paths: {_listed(refused)}",
        )
    stray = outside(changed, list(plan.spec.scope))
    if stray:
        return RunFailure(
            FailureKind.REFUSED,
            f"nothing was pushed: the change leaves the task's scope: {_listed(stray)}",
        )
    return None


def agent_stopped(result: AgentResult) -> RunFailure | None:
    """The agent did not finish: its work so far may be kept, never pushed as ready."""
    if result.status == AgentStatus.FINISHED:
        return None
    return RunFailure(
        AGENT_STOPS.get(result.status, FailureKind.AGENT_ERROR),
        f"the agent stopped early ({result.status}): {result.summary[:500]}",
    )


def unchanged(changed: list[str]) -> RunFailure | None:
    if changed:
        return None
    return RunFailure(FailureKind.REFUSED, "the agent finished without changing any file")


def checks_failed(results: Sequence[CheckResult], report: str) -> RunFailure | None:
    """The project's checks did not pass on the change: `report` tells the next attempt."""
    failed = [result for result in results if not result.ok]
    if not failed:
        return None
    names = ", ".join(f"`{result.command}`" for result in failed[:5])
    return RunFailure(
        FailureKind.VERIFY_FAILED,
        f"{len(failed)} of {len(results)} verification commands failed: {names}",
        report,
    )


def _listed(paths: list[str]) -> str:
    return ", ".join(f"`{path}`" for path in paths[:LISTED_PATHS])
