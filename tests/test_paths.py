"""Protected paths and task scopes match paths from the repository root."""

from __future__ import annotations

import pytest

from bot.core.paths import matches, matching, outside


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        (".bosun/policy.yaml", ".bosun/**", True),
        (".bosun/tasks/fix.yaml", ".bosun/**", True),
        ("src/.bosun/x", ".bosun/**", False),
        (".github/workflows/ci.yml", ".github/workflows/**", True),
        (".github/CODEOWNERS", ".github/workflows/**", False),
        ("README.md", "README.md", True),
        ("docs/README.md", "README.md", False),
        ("src/a/b.py", "src/*.py", False),
        ("src/b.py", "src/*.py", True),
        ("src/a/b.py", "src/**/*.py", True),
        ("src/b.py", "src/**/*.py", True),
        ("anything/at/all", "**", True),
        ("a.txt", "?.txt", True),
        ("a+b.txt", "a+b.txt", True),
    ],
)
def test_globs_are_anchored_at_the_root(path: str, glob: str, expected: bool) -> None:
    """`README.md` means the root README only; `**` is the only way to reach into directories."""
    assert matches(path, glob) is expected


def test_matching_and_outside_split_a_change() -> None:
    """A change is checked path by path against protected globs and the task's scope."""
    changed = ["src/app.py", ".github/workflows/ci.yml", "docs/x.md"]
    assert matching(changed, [".bosun/**", ".github/workflows/**"]) == [".github/workflows/ci.yml"]
    assert outside(changed, ["src/**", "docs/**"]) == [".github/workflows/ci.yml"]
