"""Counting the approvals of an agent's pull request: reviews and permissions read from GitHub."""

from __future__ import annotations

from collections.abc import Iterable

from bot.config.models import Review, permission_at_least
from bot.core.approvals import approvers
from bot.github.client import GitHubClient
from bot.github.types import Repo


async def count_approvals(
    github: GitHubClient,
    *,
    repo: Repo,
    number: int,
    head_sha: str,
    excluded: Iterable[str],
    review: Review,
) -> int:
    """Approvals of the head commit by distinct people whose permission reaches `review.counts`."""
    reviews = await github.pulls.list_reviews(repo=repo, number=number)
    counted = 0
    for login in approvers(reviews, head_sha=head_sha, excluded=excluded):
        actual = await github.repos.permission_of(repo=repo, username=login)
        counted += permission_at_least(actual, review.counts)
    return counted
