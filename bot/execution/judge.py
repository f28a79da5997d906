"""Whether a finished run may be published: the agent finished, inside its rules."""

from __future__ import annotations

from bot.core.failures import FailureKind, RunFailure
from bot.core.paths import matching, outside
from bot.execution.run_plan import RunPlan
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


def judge(result: AgentResult, changed: list[str], plan: RunPlan) -> RunFailure | None:
    """Why the run's change must not be pushed, or None when it may be."""
    if result.status != AgentStatus.FINISHED:
        return RunFailure(
            AGENT_STOPS.get(result.status, FailureKind.AGENT_ERROR),
            f"the agent stopped early ({result.status}): {result.summary[:500]}",
        )
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
    if not changed:
        return RunFailure(FailureKind.REFUSED, "the agent finished without changing any file")
    return None


def _listed(paths: list[str]) -> str:
    return ", ".join(f"`{path}`" for path in paths[:LISTED_PATHS])
