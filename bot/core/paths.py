"""Anchored path globs for protected paths and task scopes: `*`, `?` and `**`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache


@cache
def _compiled(glob: str) -> re.Pattern[str]:
    """`**` spans directories (`a/**` is everything under a), `*` and `?` stay in one segment."""
    parts: list[str] = []
    index = 0
    while index < len(glob):
        if glob.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif glob.startswith("**", index):
            parts.append(".*")
            index += 2
        elif glob[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif glob[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(glob[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def matches(path: str, glob: str) -> bool:
    return _compiled(glob.lstrip("/")).match(path.lstrip("/")) is not None


def matching(paths: Iterable[str], globs: Sequence[str]) -> list[str]:
    """The paths that at least one glob covers, in the order given."""
    return [path for path in paths if any(matches(path, glob) for glob in globs)]


def outside(paths: Iterable[str], globs: Sequence[str]) -> list[str]:
    """The paths no glob covers."""
    return [path for path in paths if not any(matches(path, glob) for glob in globs)]
