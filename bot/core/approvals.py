"""Approvals of an agent's pull request: whose count, on which commit, against the policy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

# A reviewer's latest review in one of these states is their verdict; a comment is not.
# https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/reviewing-changes-in-pull-requests/about-pull-request-reviews
VERDICTS = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


class Reviewer(Protocol):
    @property
    def login(self) -> str: ...

    @property
    def is_bot(self) -> bool: ...


class Verdict(Protocol):
    """What `approvers` reads of a review: who gave it, what it says, on which commit."""

    @property
    def author(self) -> Reviewer: ...

    @property
    def state(self) -> str: ...

    @property
    def commit_id(self) -> str | None: ...


def approvers(reviews: Sequence[Verdict], *, head_sha: str, excluded: Iterable[str]) -> list[str]:
    """People whose latest verdict approves `head_sha`, bots and `excluded` left out.

    `reviews` come oldest first, as GitHub lists them. An approval of an earlier commit
    does not carry over to a later push.
    """
    verdicts: dict[str, Verdict] = {}
    for review in reviews:
        if review.author.login and review.state.upper() in VERDICTS:
            verdicts[review.author.login] = review
    left_out = set(excluded)
    return [
        login
        for login, review in verdicts.items()
        if review.state.upper() == "APPROVED"
        and review.commit_id == head_sha
        and login not in left_out
        and not review.author.is_bot
    ]


class Requested(Protocol):
    """What `requesters` reads of a task: who triggered it, and whether a review did."""

    @property
    def triggered_by(self) -> str: ...

    @property
    def review_context(self) -> str | None: ...


def requesters(tasks: Iterable[Requested]) -> set[str]:
    """Who asked for the agent's work; a reviewer's re-run does not make them its author."""
    return {task.triggered_by for task in tasks if task.review_context is None}
