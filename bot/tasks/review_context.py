"""A reviewer's requested changes as plain text, handed to the re-run agent as quoted context."""

from __future__ import annotations

from typing import Any

REVIEW_CONTEXT_LIMIT = 20_000  # characters of review text handed to the agent


def review_context(review: dict[str, Any], comments: list[dict[str, Any]]) -> str:
    """What the reviewer wrote, as plain text: the review's body, then each inline comment."""
    login = str((review.get("user") or {}).get("login") or "")
    lines = [f"Review by @{login}, changes requested:", str(review.get("body") or "(no text)")]
    for comment in comments:
        line = comment.get("line") or comment.get("original_line")
        where = f"{comment.get('path')}" + (f" line {line}" if line else "")
        lines += ["", f"Comment on {where}:", str(comment.get("body") or "")]
    return "\n".join(lines)[:REVIEW_CONTEXT_LIMIT]
