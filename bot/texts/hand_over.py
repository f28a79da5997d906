"""The comment that hands a task to people, mentioning its owners."""

from __future__ import annotations

from collections.abc import Sequence

from bot.texts.markdown import without_mentions


def hand_over_comment(
    *, task_name: str, reason: str, label: str, mentions: Sequence[str], branch: str
) -> str:
    """A new comment, so that the owners it mentions are notified (edits notify no one)."""
    owners = " ".join(f"@{owner}" for owner in mentions) or "Maintainers"
    return "\n".join(
        [
            f"{owners}: Bosun has stopped trying `{task_name}` and hands it to you.",
            "",
            f"Why: {without_mentions(reason)}",
            "",
            f"The issue is labelled `{label}`. The branch `{branch}` is kept as the agent left "
            "it, if it exists. Push to it, or comment `/bosun retry` (with any advice for the "
            "agent below it) to run the task again.",
        ]
    )
