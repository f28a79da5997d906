"""Isolation backends behind one Protocol, and the factory that picks one by name."""

from __future__ import annotations

from sandbox.backends.base import Backend, Limits, RunResult, SandboxError
from sandbox.backends.bubblewrap import BubblewrapBackend
from sandbox.backends.process import ProcessBackend

__all__ = [
    "Backend",
    "BubblewrapBackend",
    "Limits",
    "ProcessBackend",
    "RunResult",
    "SandboxError",
    "make_backend",
]


def make_backend(name: str = "bubblewrap", *, sandbox_user: str = "bosun-sandbox") -> Backend:
    """The backend called `name`: "bubblewrap" (isolated) or "process" (no isolation, logged)."""
    if name == "bubblewrap":
        return BubblewrapBackend(sandbox_user=sandbox_user)
    if name == "process":
        return ProcessBackend()
    raise ValueError(f"unknown sandbox backend {name!r}: expected 'bubblewrap' or 'process'")
