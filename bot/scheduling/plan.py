"""The scheduler's pure decision: which queued tasks start now, given held locks and slots."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    task_id: int
    lock_key: str


def plan(
    candidates: Sequence[Candidate], *, held: AbstractSet[str], free_slots: int
) -> list[Candidate]:
    """Which candidates to start now, in the order given (priority, then age).

    A candidate whose branch is held, or taken earlier in this plan, is passed over, so a
    task waiting on a lock never blocks unrelated tasks behind it.
    """
    chosen: list[Candidate] = []
    taken = set(held)
    for candidate in candidates:
        if len(chosen) >= free_slots:
            break
        if candidate.lock_key in taken:
            continue
        taken.add(candidate.lock_key)
        chosen.append(candidate)
    return chosen
