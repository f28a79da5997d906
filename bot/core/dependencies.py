"""`depends_on`, decided over an issue's tasks: a task runs only once each task it depends on
has had its pull request merged for the same issue, because it starts from the base branch
and must see their change. Pure functions; `bot/tasks/waiting.py` acts on them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.task_states import TaskState

# A task in one of these states may still get its pull request merged.
_ON_ITS_WAY = (
    TaskState.HELD,
    TaskState.WAITING,
    TaskState.QUEUED,
    TaskState.RUNNING,
    TaskState.PR_OPEN,
)


class IssueTask(Protocol):
    """What these decisions read of a task of the issue (a store row will do)."""

    @property
    def id(self) -> int | None: ...

    @property
    def task_name(self) -> str: ...

    @property
    def state(self) -> str: ...


@dataclass(frozen=True)
class WaitingTask:
    """A waiting task and the tasks it depends on, as its config commit declares them."""

    task_id: int
    task_name: str
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class Stranded:
    """A waiting task that can no longer run, and the dependency that will never merge."""

    task: WaitingTask
    dependency: str


def unmet_dependencies(depends_on: Iterable[str], issue_tasks: Iterable[IssueTask]) -> list[str]:
    """The dependencies with no merged (`done`) task on the issue yet, in declared order."""
    done = {task.task_name for task in issue_tasks if task.state == TaskState.DONE}
    return [name for name in dict.fromkeys(depends_on) if name not in done]


def ready_to_release(
    waiting: Sequence[WaitingTask], issue_tasks: Sequence[IssueTask]
) -> list[WaitingTask]:
    """The waiting tasks whose dependencies have all merged."""
    return [task for task in waiting if not unmet_dependencies(task.depends_on, issue_tasks)]


def stranded_by(
    ended: IssueTask, waiting: Sequence[WaitingTask], issue_tasks: Sequence[IssueTask]
) -> list[Stranded]:
    """The waiting tasks left behind now that `ended` will never merge (abandoned, or
    cancelled): those still waiting on its name while no other task of that name is on its
    way, then, as those are cancelled in turn, the tasks waiting on them."""
    gone: set[int | None] = {ended.id}
    stranded: list[Stranded] = []
    names = [ended.task_name]
    while names:
        name = names.pop(0)
        if _on_its_way(name, issue_tasks, ignoring=gone):
            continue
        for task in waiting:
            if task.task_id in gone or name not in unmet_dependencies(task.depends_on, issue_tasks):
                continue
            gone.add(task.task_id)
            stranded.append(Stranded(task, name))
            names.append(task.task_name)
    return stranded


def named(task_names: Sequence[str]) -> str:
    """Task names as people read them in a comment: `a`, `b`."""
    return ", ".join(f"`{name}`" for name in task_names)


def _on_its_way(name: str, issue_tasks: Sequence[IssueTask], *, ignoring: set[int | None]) -> bool:
    return any(
        task.task_name == name and task.state in _ON_ITS_WAY and task.id not in ignoring
        for task in issue_tasks
    )
