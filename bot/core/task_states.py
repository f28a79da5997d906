"""The task state machine: every state, every legal transition, and who causes it."""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    HELD = "held"  # asked for by someone below the trigger permission; waits for ok-to-run
    WAITING = "waiting"  # waits for the pull requests of the tasks it depends on to merge
    QUEUED = "queued"  # waiting for a slot and its branch lock
    RUNNING = "running"  # a worker holds its lease and runs the agent
    PR_OPEN = "pr_open"  # the agent's pull request is open for review
    DONE = "done"  # the pull request was merged
    ABANDONED = "abandoned"  # the pull request was closed without merging
    FAILED = "failed"  # gave up: the reason says why
    CANCELLED = "cancelled"  # a person stopped it, or a task it depends on will never merge


ACTIVE_TASK_STATES = (TaskState.HELD, TaskState.WAITING, TaskState.QUEUED, TaskState.RUNNING)
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
    (TaskState.HELD, TaskState.WAITING): "maintainer: `/bosun ok-to-run`, dependencies unmerged",
    (TaskState.WAITING, TaskState.QUEUED): "reviewer: last dependency's pull request merged",
    (TaskState.WAITING, TaskState.CANCELLED): (
        "developer: label removed, `/bosun cancel` or issue closed; "
        "Bosun: a dependency abandoned or cancelled"
    ),
    (TaskState.QUEUED, TaskState.RUNNING): "scheduler: slot free and branch lock claimed",
    (TaskState.QUEUED, TaskState.CANCELLED): "developer: label removed or `/bosun cancel`",
    (TaskState.RUNNING, TaskState.PR_OPEN): "worker: pull request opened or updated",
    (TaskState.RUNNING, TaskState.FAILED): (
        "failure policy: a failure with no retry left, then escalated to people, abandoned "
        "or rolled back"
    ),
    (TaskState.RUNNING, TaskState.CANCELLED): "worker: cancel asked for (label, command)",
    (TaskState.RUNNING, TaskState.QUEUED): (
        "failure policy: retry after backoff, or one run on the escalation tier; "
        "Bosun: shutdown gives the attempt back"
    ),
    (TaskState.PR_OPEN, TaskState.DONE): "reviewer or auto-merge: pull request merged",
    (TaskState.PR_OPEN, TaskState.ABANDONED): "developer: pull request closed unmerged",
}


def can_transition(current: TaskState | str, target: TaskState | str) -> bool:
    return (TaskState(current), TaskState(target)) in TRANSITIONS
