"""Untrusted text made safe to post: mentions that notify no one, quotes that vouch for nothing."""

from __future__ import annotations


def without_mentions(text: str) -> str:
    """Text from models or issues, unable to notify anyone: GitHub links no `@` followed by a
    zero-width space. A new comment or pull request would otherwise ping whoever it names."""
    return text.replace("@", "@\u200b")


def quoted(text: str) -> str:
    """The agent's words, shown as a quote: its text is not Bosun's to vouch for."""
    return "\n".join(f"> {line}" if line else ">" for line in text[:4000].splitlines())
