"""The verify phase: the project's own checks, run by Bosun in the sandbox after the agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandbox.backends import Backend, Limits

OUTPUT_TAIL = 8_000  # characters of a check's output kept: the end, where failures are


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    command: str
    exit_code: int | None  # None: stopped at its wall-clock limit
    duration_s: float
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


async def run_checks(
    backend: Backend,
    worktree: Path,
    commands: Sequence[str],
    *,
    env: Mapping[str, str],
    limits: Limits,
) -> list[CheckResult]:
    """Every command, in order, each with /bin/sh -c at the root; all run, so that a failure
    reports every check that fails, not only the first."""
    results = []
    for command in commands:
        run = await backend.run(["/bin/sh", "-c", command], cwd=worktree, env=env, limits=limits)
        output = "\n".join(part for part in (run.stdout, run.stderr) if part)
        if run.timed_out:
            output += f"\n(stopped after {limits.wall_seconds:.0f}s)"
        results.append(
            CheckResult(
                command=command,
                exit_code=None if run.timed_out else run.exit_code,
                duration_s=run.duration_s,
                output=output[-OUTPUT_TAIL:],
            )
        )
    return results


def failure_report(results: Sequence[CheckResult]) -> str:
    """What the agent's next attempt is told of the checks that failed."""
    failed = [result for result in results if not result.ok]
    blocks = []
    for result in failed:
        status = "timed out" if result.exit_code is None else f"exit {result.exit_code}"
        blocks.append(f"$ {result.command}\n({status})\n{result.output.strip()}")
    return "\n\n".join(blocks)
