"""The task state machine: every state, every legal transition, and who causes it."""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    HELD = "held"  # asked for by someone below the trigger permission; waits for ok-to-run
    QUEUED = "queued"  # waiting for a slot and its branch lock
    RUNNING = "running"  # a worker holds its lease and runs the agent
    PR_OPEN = "pr_open"  # the agent's pull request is open for review
    DONE = "done"  # the pull request was merged
    ABANDONED = "abandoned"  # the pull request was closed without merging
    FAILED = "failed"  # gave up: the reason says why
    CANCELLED = "cancelled"  # a person stopped it


ACTIVE_TASK_STATES = (TaskState.HELD, TaskState.QUEUED, TaskState.RUNNING)
FINISHED_TASK_STATES = (
    TaskState.DONE,
    TaskState.ABANDONED,
    TaskState.FAILED,
    TaskState.CANCELLED,
)

# (from, to) -> who causes it. The store refuses every other change of state.
TRANSITIONS: dict[tuple[TaskState, TaskState], str] = {
    (TaskState.HELD, TaskState.QUEUED): "maintainer: `/bosun ok-to-run`",
    (TaskState.HELD, TaskState.CANCELLED): "developer: label removed or `/bosun cancel`",
    (TaskState.QUEUED, TaskState.RUNNING): "scheduler: slot free and branch lock claimed",
    (TaskState.QUEUED, TaskState.CANCELLED): "developer: label removed or `/bosun cancel`",
    (TaskState.RUNNING, TaskState.PR_OPEN): "worker: pull request opened or updated",
    (TaskState.RUNNING, TaskState.FAILED): "worker: agent, sandbox, budget or publish failure",
    (TaskState.RUNNING, TaskState.CANCELLED): "worker: cancel asked for (label, command)",
    (TaskState.RUNNING, TaskState.QUEUED): "scheduler: worker lost with attempts left; shutdown",
    (TaskState.PR_OPEN, TaskState.DONE): "reviewer: pull request merged",
    (TaskState.PR_OPEN, TaskState.ABANDONED): "developer: pull request closed unmerged",
}


def can_transition(current: TaskState | str, target: TaskState | str) -> bool:
    return (TaskState(current), TaskState(target)) in TRANSITIONS
