"""Lock identities: the branch lock a running task holds, one running task per branch."""

from __future__ import annotations


def lock_key(repo_full_name: str, branch: str) -> str:
    """The branch lock a task must hold while it runs: one running task per branch."""
    return f"branch:{repo_full_name}:{branch}"
