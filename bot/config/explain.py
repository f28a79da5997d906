"""`bosun policy explain`: the effective policy, one key a line, with where each value came from."""

from __future__ import annotations

from bot.config.effective import Effective, leaves, show_value


def explain_lines(effective: Effective) -> list[str]:
    """`key: value  (origin)` for every dotted key of the effective policy, in policy order."""
    values = leaves(effective.policy)
    width = max(len(key) for key in values)
    return [
        f"{key + ':':<{width + 1}} {show_value(value)}  ({effective.origins[key]})"
        for key, value in values.items()
    ]
