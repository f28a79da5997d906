"""No isolation: runs the command as the host user, for operators who ask for it by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.backends.base import DEFAULT_PATH, LOG, Limits, RunResult, require_tool, run_tree


class ProcessBackend:
    """Runs argv in the worktree with a clean environment and limits, and nothing else.

    The command can read and write anything the host user can, and reach the network.
    `max_processes` counts every process of the host user, and root is exempt from it.
    """

    name = "process"

    def __init__(self) -> None:
        LOG.warning(
            "sandbox backend 'process' selected: agent commands run WITHOUT ISOLATION as the "
            "host user, with its files, its network and its privileges"
        )

    async def run(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits
    ) -> RunResult:
        command = [*limits.prlimit_argv(require_tool("prlimit")), *argv]
        return await run_tree(command, cwd=cwd, env={"PATH": DEFAULT_PATH, **env}, limits=limits)
