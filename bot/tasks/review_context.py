"""A reviewer's requested changes as plain text, handed to the re-run agent as quoted context."""

from __future__ import annotations

from collections.abc import Sequence

from bot.github.types import Review, ReviewComment

REVIEW_CONTEXT_LIMIT = 20_000  # characters of review text handed to the agent


def review_context(review: Review, comments: Sequence[ReviewComment]) -> str:
    """What the reviewer wrote, as plain text: the review's body, then each inline comment."""
    lines = [f"Review by @{review.author.login}, changes requested:", review.body or "(no text)"]
    for comment in comments:
        where = comment.path + (f" line {comment.line}" if comment.line else "")
        lines += ["", f"Comment on {where}:", comment.body]
    return "\n".join(lines)[:REVIEW_CONTEXT_LIMIT]
