"""`depends_on` decisions over an issue's tasks: what is unmet, what to release, what is lost."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.dependencies import (
    Stranded,
    WaitingTask,
    named,
    ready_to_release,
    stranded_by,
    unmet_dependencies,
)
from bot.core.task_states import TaskState


@dataclass(frozen=True)
class Row:
    id: int
    task_name: str
    state: str


def test_only_a_merged_task_meets_a_dependency() -> None:
    """Queued, open, failed or abandoned work is not on the base branch yet; done is."""
    for state in TaskState:
        met = not unmet_dependencies(["fix-bug"], [Row(1, "fix-bug", state)])
        assert met == (state == TaskState.DONE), state


def test_unmet_dependencies_keep_their_declared_order_once_each() -> None:
    tasks = [Row(1, "update-docs", TaskState.DONE), Row(2, "lint", TaskState.PR_OPEN)]
    assert unmet_dependencies(["lint", "fix-bug", "update-docs", "lint"], tasks) == [
        "lint",
        "fix-bug",
    ]
    assert unmet_dependencies([], []) == []


def test_a_waiting_task_is_released_when_all_its_dependencies_merged() -> None:
    both = WaitingTask(3, "add-tests", ("fix-bug", "update-docs"))
    one = WaitingTask(4, "release-notes", ("fix-bug",))
    tasks = [Row(1, "fix-bug", TaskState.DONE), Row(2, "update-docs", TaskState.PR_OPEN)]
    assert ready_to_release([both, one], tasks) == [one]
    tasks.append(Row(5, "update-docs", TaskState.DONE))
    assert ready_to_release([both, one], tasks) == [both, one]


def test_a_dependency_that_will_never_merge_strands_the_tasks_waiting_on_it() -> None:
    """Abandoning fix-bug strands add-tests, and, through it, what waits on add-tests."""
    fix = Row(1, "fix-bug", TaskState.ABANDONED)
    tests = WaitingTask(2, "add-tests", ("fix-bug",))
    docs = WaitingTask(3, "update-docs", ("add-tests",))
    other = WaitingTask(4, "lint", ("format",))
    rows = [fix, *(Row(w.task_id, w.task_name, TaskState.WAITING) for w in (tests, docs, other))]
    assert stranded_by(fix, [tests, docs, other], rows) == [
        Stranded(tests, "fix-bug"),
        Stranded(docs, "add-tests"),
    ]


def test_another_task_of_the_same_name_on_its_way_keeps_them_waiting() -> None:
    """A second fix-bug still in review may merge: add-tests keeps waiting for it."""
    fix = Row(1, "fix-bug", TaskState.ABANDONED)
    tests = WaitingTask(2, "add-tests", ("fix-bug",))
    rows = [fix, Row(2, "add-tests", TaskState.WAITING), Row(5, "fix-bug", TaskState.PR_OPEN)]
    assert stranded_by(fix, [tests], rows) == []
    rows[-1] = Row(5, "fix-bug", TaskState.FAILED)
    assert stranded_by(fix, [tests], rows) == [Stranded(tests, "fix-bug")]


def test_a_running_dependency_asked_to_stop_counts_as_gone() -> None:
    """The task that ended is never its own replacement, whatever state it is still in."""
    fix = Row(1, "fix-bug", TaskState.RUNNING)
    tests = WaitingTask(2, "add-tests", ("fix-bug",))
    assert stranded_by(fix, [tests], [fix, Row(2, "add-tests", TaskState.WAITING)]) == [
        Stranded(tests, "fix-bug")
    ]


def test_a_dependency_already_merged_is_not_lost() -> None:
    """fix-bug merged earlier: a later fix-bug abandoned takes nothing from add-tests."""
    again = Row(3, "fix-bug", TaskState.ABANDONED)
    tests = WaitingTask(2, "add-tests", ("fix-bug", "update-docs"))
    rows = [Row(1, "fix-bug", TaskState.DONE), Row(2, "add-tests", TaskState.WAITING), again]
    assert stranded_by(again, [tests], rows) == []


def test_names_are_listed_as_code() -> None:
    assert named(["fix-bug", "update-docs"]) == "`fix-bug`, `update-docs`"
