"""The task state machine is written down once, and the store enforces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import IllegalTransition
from bot.core.task_states import TRANSITIONS, TaskState
from bot.store import NewTask, Store

README = Path(__file__).parent.parent / "README.md"


def readme_transitions() -> dict[tuple[str, str], str]:
    lines = README.read_text().splitlines()
    start = lines.index("| from | to | caused by |") + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        source, target, cause = (cell.strip() for cell in line.strip("|").split("|"))
        rows[source, target] = cause
    return rows


def test_the_readme_table_is_the_state_machine() -> None:
    """What the README tells users about task states is exactly what the code allows."""
    code = {(str(a), str(b)): cause for (a, b), cause in TRANSITIONS.items()}
    assert readme_transitions() == code


def test_the_store_refuses_an_illegal_transition(store: Store) -> None:
    """A finished task can never be made to run again by a stray write."""
    task = store.tasks.create(
        NewTask(
            installation_id=7,
            repo_full_name="acme/app",
            issue_number=1,
            is_pull_request=False,
            task_name="fix",
            branch="bosun/fix/1",
            triggered_by="alice",
            trigger_delivery_id="d-1",
            config_sha=None,
        )
    )
    assert task is not None and task.id is not None
    assert store.tasks.transition(task.id, TaskState.QUEUED, TaskState.CANCELLED, reason="test")
    with pytest.raises(IllegalTransition):
        store.tasks.transition(task.id, TaskState.CANCELLED, TaskState.RUNNING)
    with pytest.raises(IllegalTransition):
        store.tasks.update(task.id, state=TaskState.RUNNING)
    assert not store.tasks.transition(task.id, TaskState.QUEUED, TaskState.RUNNING), "lost race"
