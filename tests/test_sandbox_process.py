"""The process backend, and the runner both backends share: limits, output, cancellation."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from pathlib import Path

import pytest

from sandbox.backends import Limits, ProcessBackend, RunResult, make_backend
from sandbox.backends.base import kill_tree
from tests.sandbox_fixtures import sleepers, unique_sleep, wait_until_gone


async def sh(
    backend: ProcessBackend,
    script: str,
    *,
    cwd: Path,
    limits: Limits,
    env: dict[str, str] | None = None,
) -> RunResult:
    return await backend.run(["sh", "-c", script], cwd=cwd, env=env or {}, limits=limits)


def test_choosing_the_process_backend_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    """An operator who picks the process backend is told, in the log, that nothing is isolated."""
    with caplog.at_level(logging.WARNING, logger="bosun.sandbox"):
        backend = make_backend("process")
    assert isinstance(backend, ProcessBackend)
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    assert "WITHOUT ISOLATION" in caplog.records[0].getMessage()


def test_an_unknown_backend_name_is_refused() -> None:
    """A misspelt backend never falls back to something else."""
    with pytest.raises(ValueError, match="unknown sandbox backend 'docker'"):
        make_backend("docker")


def test_limits_reject_values_that_would_disable_them() -> None:
    """Zero or negative limits are configuration mistakes, not 'unlimited'."""
    with pytest.raises(ValueError, match="at least 1"):
        Limits(cpu_seconds=0, memory_mb=512, wall_seconds=1)
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits(cpu_seconds=1, memory_mb=512, wall_seconds=0)


async def test_runs_in_the_worktree_with_exit_code_and_output(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """The command runs in cwd; its status, stdout and stderr come back as they were."""
    result = await sh(
        process_backend,
        "pwd; echo oops >&2; echo made > here.txt; exit 3",
        cwd=tmp_path,
        limits=short_limits,
    )
    assert (result.exit_code, result.stdout, result.stderr) == (3, f"{tmp_path}\n", "oops\n")
    assert not (result.timed_out or result.cancelled or result.truncated)
    assert (tmp_path / "here.txt").read_text() == "made\n"


async def test_a_signal_death_reads_as_a_shell_would_report_it(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """A command killed by signal N exits with 128 + N."""
    result = await sh(process_backend, "kill -TERM $$", cwd=tmp_path, limits=short_limits)
    assert result.exit_code == 128 + 15


async def test_environment_is_only_what_is_passed_plus_path(
    process_backend: ProcessBackend,
    tmp_path: Path,
    short_limits: Limits,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host's variables stay out; the given ones and a PATH go in."""
    canary = secrets.token_hex(8)
    monkeypatch.setenv("BOSUN_CANARY", canary)
    result = await sh(
        process_backend, "env", cwd=tmp_path, limits=short_limits, env={"GIVEN": "yes"}
    )
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names <= {"PATH", "PWD", "GIVEN"}
    assert "GIVEN=yes" in result.stdout
    assert canary not in result.stdout


async def test_wall_timeout_kills_the_command_and_its_children(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """At the wall-clock limit the command and everything it started are killed."""
    marker = unique_sleep()
    short = dataclasses.replace(short_limits, wall_seconds=0.3)
    result = await sh(
        process_backend, f"sleep {marker} & sleep {marker}", cwd=tmp_path, limits=short
    )
    assert result.timed_out
    assert result.exit_code is None
    assert wait_until_gone(marker) == []


async def test_a_background_process_does_not_outlive_or_stall_the_run(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """When the command exits, what it left running is killed and the run returns at once."""
    marker = unique_sleep()
    result = await sh(
        process_backend, f"sleep {marker} & echo started", cwd=tmp_path, limits=short_limits
    )
    assert (result.exit_code, result.stdout, result.timed_out) == (0, "started\n", False)
    assert result.duration_s < 2
    assert wait_until_gone(marker) == []


async def test_cancellation_kills_the_tree_and_propagates(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """Cancelling the awaiting task kills the command's tree and re-raises CancelledError."""
    marker = unique_sleep()
    run = asyncio.create_task(
        sh(process_backend, f"sleep {marker} & sleep {marker}", cwd=tmp_path, limits=short_limits)
    )
    for _ in range(200):
        if len(sleepers(marker)) == 2:
            break
        await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert wait_until_gone(marker) == []


async def test_output_keeps_the_tail_of_each_stream(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """Each stream keeps its last max_output_bytes bytes, and `truncated` says so."""
    tiny = dataclasses.replace(short_limits, max_output_bytes=10)
    result = await sh(process_backend, "seq 1 1000; echo short >&2", cwd=tmp_path, limits=tiny)
    assert (result.stdout, result.stderr, result.truncated) == ("\n999\n1000\n", "short\n", True)


async def test_a_cut_through_a_character_does_not_garble_the_rest(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """Truncation that lands inside a UTF-8 character drops that character, nothing more."""
    tiny = dataclasses.replace(short_limits, max_output_bytes=5)
    result = await sh(
        process_backend, "printf 'xx\\303\\251\\303\\251ab'", cwd=tmp_path, limits=tiny
    )
    assert result.stdout == "éab"


async def test_cpu_limit_kills_a_busy_loop(
    process_backend: ProcessBackend, tmp_path: Path, short_limits: Limits
) -> None:
    """A command that burns its CPU seconds is killed by the kernel, not by the wall clock."""
    busy = dataclasses.replace(short_limits, cpu_seconds=1)
    result = await sh(process_backend, "while :; do :; done", cwd=tmp_path, limits=busy)
    assert result.exit_code in (128 + 9, 128 + 24)
    assert not result.timed_out


def test_kill_tree_of_a_finished_process_is_harmless() -> None:
    """Killing a tree that is already gone does nothing and raises nothing."""
    kill_tree(2**22 + 7)
