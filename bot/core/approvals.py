"""Approvals of an agent's pull request: whose count, on which commit, against the policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

# A reviewer's latest review in one of these states is their verdict; a comment is not.
# https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/reviewing-changes-in-pull-requests/about-pull-request-reviews
VERDICTS = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


def approvers(
    reviews: Sequence[Mapping[str, Any]], *, head_sha: str, excluded: Iterable[str]
) -> list[str]:
    """People whose latest verdict approves `head_sha`, bots and `excluded` left out.

    `reviews` come oldest first, as GitHub lists them. An approval of an earlier commit
    does not carry over to a later push.
    """
    verdicts: dict[str, Mapping[str, Any]] = {}
    for review in reviews:
        user = review.get("user") or {}
        login = str(user.get("login") or "")
        if login and str(review.get("state") or "").upper() in VERDICTS:
            verdicts[login] = review
    left_out = set(excluded)
    return [
        login
        for login, review in verdicts.items()
        if str(review.get("state")).upper() == "APPROVED"
        and review.get("commit_id") == head_sha
        and login not in left_out
        and not _is_bot(review.get("user") or {})
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


def _is_bot(user: Mapping[str, Any]) -> bool:
    return user.get("type") == "Bot" or str(user.get("login") or "").endswith("[bot]")
