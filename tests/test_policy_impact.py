"""What a policy change does: a readable diff, and the live tasks it holds, stops or re-routes."""

from __future__ import annotations

from typing import Any

from bot.config.impact import Action, LiveTask, policy_diff, render_diff, render_impacts, simulate
from bot.config.models import Policy, TaskSpec

BEFORE: dict[str, Any] = {
    "version": 1,
    "agents": {"coder": {}, "writer": {}},
    "models": {"tiers": {"small": ["m"], "frontier": ["o"]}, "default_tier": "small"},
    "budgets": {"per_task_usd": 2.0},
}
TASKS = {
    "fix": TaskSpec(description="Fix.", agent="coder", prompt="Fix."),
    "docs": TaskSpec(description="Docs.", agent="writer", prompt="Docs.", tier="frontier"),
}


def policy(**overrides: Any) -> Policy:
    return Policy.model_validate({**BEFORE, **overrides})


def live(**overrides: Any) -> LiveTask:
    fields: dict[str, Any] = {
        "id": 1,
        "task_name": "fix",
        "state": "queued",
        "agent": "coder",
        "tier": "small",
        "triggered_by_permission": "write",
        "cost_usd": 0.0,
        "issue_number": 7,
        **overrides,
    }
    return LiveTask(**fields)


def test_diff_lists_changed_removed_and_added_keys() -> None:
    """Each changed key is one readable line: old → new, removed, or added."""
    after = policy(
        budgets={"per_task_usd": 1.0},
        models={"tiers": {"small": ["m"]}, "default_tier": "small"},
        triggers={"min_permission": "maintain"},
        teams={"web": {"members": ["octocat"]}},
    )
    assert [str(change) for change in policy_diff(policy(), after)] == [
        "triggers.min_permission: write → maintain",
        "models.tiers.frontier: removed",
        "budgets.per_task_usd: 2.0 → 1.0",
        "teams.web: added {members: [octocat], repos: []}",
    ]


def test_render_diff_is_markdown_and_says_when_nothing_changed() -> None:
    """The check run shows the diff as a list, or a sentence when the policy is unchanged."""
    assert render_diff([]) == "The effective policy is unchanged."
    changes = policy_diff(policy(), policy(budgets={"per_task_usd": 1.5}))
    assert render_diff(changes) == "- `budgets.per_task_usd: 2.0 → 1.5`"


def test_unchanged_policy_touches_no_live_task() -> None:
    """A change that keeps every task valid affects nothing."""
    assert simulate(policy(), [live(), live(id=2, state="running")], tasks=TASKS) == []
    assert render_impacts([]) == "No queued or running task is affected."


def test_task_no_longer_defined_is_stopped() -> None:
    """A task whose file is gone stops."""
    [impact] = simulate(policy(), [live(task_name="gone")], tasks=TASKS)
    assert impact.action is Action.STOP
    assert impact.reasons == ("task no longer defined",)


def test_removed_agent_stops_its_tasks() -> None:
    """Tasks of an agent the policy no longer has stop."""
    after = policy(agents={"coder": {}})
    [impact] = simulate(after, [live(task_name="docs", agent="writer")], tasks=TASKS)
    assert (impact.action, impact.reasons) == (Action.STOP, ("agent 'writer' removed",))


def test_removed_tier_reroutes_queued_tasks_and_stops_running_ones() -> None:
    """A queued task of a removed tier moves to its task tier or default; a running one stops."""
    after = policy(models={"tiers": {"small": ["m"]}, "default_tier": "small"})
    queued, running = simulate(
        after,
        [
            live(task_name="docs", agent="writer", tier="frontier"),
            live(id=2, state="running", tier="frontier"),
        ],
        tasks=TASKS,
    )
    assert (queued.action, queued.tier) == (Action.REROUTE, "small")
    assert running.action is Action.STOP
    assert "re-routed to tier 'small'" in render_impacts([queued])


def test_budget_below_what_was_spent_stops_the_task() -> None:
    """A task that already spent its new budget stops."""
    after = policy(budgets={"per_task_usd": 1.0})
    [impact] = simulate(after, [live(cost_usd=1.25, state="running")], tasks=TASKS)
    assert impact.action is Action.STOP
    assert impact.reasons == ("budget 1 USD is at or below the 1.25 USD spent",)


def test_triggerer_below_new_min_permission_is_held() -> None:
    """A queued task triggered by someone now below min_permission is held; running ones go on."""
    after = policy(triggers={"min_permission": "maintain"})
    found = simulate(after, [live(), live(id=2, state="running")], tasks=TASKS)
    assert [(impact.task.id, impact.action) for impact in found] == [(1, Action.HOLD)]
    assert render_impacts(found) == (
        "- #7 fix (queued, task 1): hold: triggered by 'write', below min_permission 'maintain'"
    )
