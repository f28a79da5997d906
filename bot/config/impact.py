"""What a policy change does: a readable diff, and the live tasks it holds, stops or re-routes."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.config.effective import Effective, show_value
from bot.config.models import Policy, TaskSpec

REMOVED = "removed"


@dataclass(frozen=True)
class Change:
    """One key whose value differs; `before` is None when it was added, `after` when removed."""

    key: str
    before: object | None
    after: object | None
    kind: Literal["changed", "added", "removed"] = "changed"

    def __str__(self) -> str:
        if self.kind == "removed":
            return f"{self.key}: {REMOVED}"
        if self.kind == "added":
            return f"{self.key}: added {show_value(self.after)}"
        return f"{self.key}: {show_value(self.before)} → {show_value(self.after)}"


def policy_diff(before: Policy, after: Policy) -> list[Change]:
    """Every key whose value differs, in policy order; a removed or added section is one line."""
    changes: list[Change] = []
    _diff(before.model_dump(mode="json"), after.model_dump(mode="json"), (), changes)
    return changes


def _diff(before: object, after: object, path: tuple[str, ...], out: list[Change]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*before, *(key for key in after if key not in before)]:
            where = (*path, str(key))
            if key not in after:
                out.append(Change(".".join(where), before[key], None, "removed"))
            elif key not in before:
                out.append(Change(".".join(where), None, after[key], "added"))
            else:
                _diff(before[key], after[key], where, out)
    elif before != after:
        out.append(Change(".".join(path), before, after))


def render_diff(changes: Sequence[Change]) -> str:
    """The changes as a markdown list, or a sentence saying there are none."""
    if not changes:
        return "The effective policy is unchanged."
    return "\n".join(f"- `{change}`" for change in changes)


class Action(enum.StrEnum):
    """What a policy change does to a live task, least to most disruptive."""

    REROUTE = "reroute"
    HOLD = "hold"
    STOP = "stop"


@dataclass(frozen=True, kw_only=True)
class LiveTask:
    """A queued or running task, as the store knows it."""

    id: int
    task_name: str
    state: Literal["queued", "running"]
    agent: str
    tier: str
    triggered_by_permission: str
    cost_usd: float
    issue_number: int


@dataclass(frozen=True, kw_only=True)
class Impact:
    """What the change does to one live task, and why; `tier` is the new tier of a re-route."""

    task: LiveTask
    action: Action
    reasons: tuple[str, ...]
    tier: str | None = None

    def __str__(self) -> str:
        task = self.task
        head = f"#{task.issue_number} {task.task_name} ({task.state}, task {task.id})"
        verb = f"re-routed to tier '{self.tier}'" if self.action is Action.REROUTE else self.action
        return f"{head}: {verb}: {'; '.join(self.reasons)}"


def simulate(
    after: Effective | Policy,
    live: Sequence[LiveTask],
    *,
    tasks: Mapping[str, TaskSpec] | None = None,
) -> list[Impact]:
    """The live tasks that `after` would stop, hold or re-route; untouched tasks are absent.

    Stopped: the task or its agent is gone, or its budget is now at or below what it spent
    (and a running task whose tier is gone, since its model is no longer allowed). Held: a
    queued task whose triggerer is now below `triggers.min_permission`, until someone with
    `ok_to_run_permission` releases it; a running task was allowed when it started and runs
    on. Re-routed: a queued task whose tier is gone goes to its task's tier, else the
    default tier. `tasks` is needed with a bare `Policy` and ignored with an `Effective`.
    """
    policy, specs = (after.policy, after.tasks) if isinstance(after, Effective) else (after, tasks)
    specs = specs or {}
    found = []
    for task in live:
        impact = _impact(policy, specs, task)
        if impact is not None:
            found.append(impact)
    return found


def _impact(policy: Policy, specs: Mapping[str, TaskSpec], task: LiveTask) -> Impact | None:
    spec = specs.get(task.task_name)
    if spec is None:
        return Impact(task=task, action=Action.STOP, reasons=("task no longer defined",))
    stops, holds = [], []
    if task.agent not in policy.agents:
        stops.append(f"agent '{task.agent}' removed")
    budget = min(spec.budget_usd or policy.budgets.per_task_usd, policy.budgets.per_task_usd)
    if task.cost_usd >= budget:
        stops.append(f"budget {budget:g} USD is at or below the {task.cost_usd:g} USD spent")
    tier = None
    if task.tier not in policy.models.tiers:
        if task.state == "running":
            stops.append(f"tier '{task.tier}' removed")
        else:
            tier = spec.tier if spec.tier in policy.models.tiers else policy.models.default_tier
    least = policy.triggers.min_permission
    if task.state == "queued" and not least.allows(task.triggered_by_permission):
        holds.append(
            f"triggered by '{task.triggered_by_permission}', below min_permission '{least.value}'"
        )
    if stops:
        return Impact(task=task, action=Action.STOP, reasons=tuple(stops))
    if holds and tier is not None:
        holds.append(f"tier '{task.tier}' removed: runs on '{tier}' once released")
    if holds:
        return Impact(task=task, action=Action.HOLD, reasons=tuple(holds), tier=tier)
    if tier is not None:
        reason = f"tier '{task.tier}' removed"
        return Impact(task=task, action=Action.REROUTE, reasons=(reason,), tier=tier)
    return None


def render_impacts(impacts: Sequence[Impact]) -> str:
    """The impacts as a markdown list, or a sentence saying no live task is affected."""
    if not impacts:
        return "No queued or running task is affected."
    return "\n".join(f"- {impact}" for impact in impacts)
