"""The task state machine: every state, every legal transition, and who causes it."""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a slot and its branch lock
    RUNNING = "running"  # a worker holds its lease and runs the agent
    PR_OPEN = "pr_open"  # the agent's pull request is open for review
    FAILED = "failed"  # gave up: the reason says why
    CANCELLED = "cancelled"  # a person stopped it


ACTIVE_TASK_STATES = (TaskState.QUEUED, TaskState.RUNNING)
FINISHED_TASK_STATES = (TaskState.FAILED, TaskState.CANCELLED)

# (from, to) -> who causes it. The store refuses every other change of state.
TRANSITIONS: dict[tuple[TaskState, TaskState], str] = {
    (TaskState.QUEUED, TaskState.RUNNING): "scheduler: slot free and branch lock claimed",
    (TaskState.QUEUED, TaskState.CANCELLED): "developer: label removed",
    (TaskState.RUNNING, TaskState.PR_OPEN): "worker: pull request opened or updated",
    (TaskState.RUNNING, TaskState.FAILED): "worker: agent, sandbox, budget or publish failure",
    (TaskState.RUNNING, TaskState.CANCELLED): "worker: cancel requested by a developer",
    (
        TaskState.RUNNING,
        TaskState.QUEUED,
    ): "scheduler: worker lost, attempts left; or Bosun stopped",
}


def can_transition(current: TaskState | str, target: TaskState | str) -> bool:
    return (TaskState(current), TaskState(target)) in TRANSITIONS
