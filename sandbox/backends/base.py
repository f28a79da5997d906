"""The backend seam: limits, run results, the `Backend` Protocol and the process-tree runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

LOG = logging.getLogger("bosun.sandbox")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
MIB = 1024 * 1024
# How long a killed tree may take to close its pipes before they are closed from this side.
_SETTLE_S = 2.0


class SandboxError(Exception):
    """The sandbox cannot be set up or used as configured; the message says what to fix."""


@dataclass(frozen=True)
class Limits:
    """What one run may use: CPU seconds per process, address space, wall time, processes."""

    cpu_seconds: int
    memory_mb: int
    wall_seconds: float
    max_processes: int = 256
    max_output_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if min(self.cpu_seconds, self.memory_mb, self.max_processes) < 1:
            raise ValueError("cpu_seconds, memory_mb and max_processes must be at least 1")
        if self.wall_seconds <= 0 or self.max_output_bytes < 0:
            raise ValueError("wall_seconds must be positive and max_output_bytes not negative")

    def prlimit_argv(self, prlimit: str) -> list[str]:
        """The `prlimit` prefix that applies these limits to a command and its children."""
        return [
            prlimit,
            f"--cpu={self.cpu_seconds}",
            f"--as={self.memory_mb * MIB}",
            f"--nproc={self.max_processes}",
            "--core=0",
            "--",
        ]


@dataclass(frozen=True)
class RunResult:
    """How a run ended.

    `exit_code` is the command's status, 128 + N when signal N killed it (as a shell
    reports it), and None when the wall-clock limit stopped it. `stdout` and `stderr`
    each keep their last `max_output_bytes` bytes; `truncated` says bytes were dropped.
    `cancelled` is for callers that record a run stopped by cancellation: `run` itself
    kills the tree and re-raises `asyncio.CancelledError` instead of returning.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    cancelled: bool
    duration_s: float
    truncated: bool


class Backend(Protocol):
    """Runs one command under limits, in a worktree, with exactly the given environment.

    Cancelling the awaiting task kills the command's whole process tree, then
    `asyncio.CancelledError` propagates.
    """

    name: str

    async def run(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], limits: Limits
    ) -> RunResult: ...


def require_tool(name: str) -> str:
    """The absolute path of a host tool the sandbox needs, or a `SandboxError`."""
    found = shutil.which(name, path=f"{DEFAULT_PATH}:/usr/sbin:/sbin")
    if found is None:
        raise SandboxError(f"{name} is not installed (Debian: bubblewrap, util-linux)")
    return found


async def run_tree(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: Limits,
    pass_fds: Iterable[int] = (),
) -> RunResult:
    """Run argv as the leader of a new session; kill whatever is left of its tree at the end."""
    started = time.monotonic()
    transport, collector = await _spawn(argv, cwd=cwd, env=env, limits=limits, pass_fds=pass_fds)
    try:
        done, _ = await asyncio.wait({collector.exited}, timeout=limits.wall_seconds)
    finally:
        interrupted = await _end(transport, collector)
    if interrupted:
        raise asyncio.CancelledError
    return collector.result(
        returncode=transport.get_returncode(),
        timed_out=not done,
        duration_s=time.monotonic() - started,
    )


async def wait_uninterrupted(future: asyncio.Future[Any], *, within: float | None = None) -> bool:
    """Wait for future (at most `within` seconds) however often the task is cancelled meanwhile.

    Returns whether a cancellation arrived, for the caller to re-raise once it has cleaned up.
    """
    loop = asyncio.get_running_loop()
    deadline = None if within is None else loop.time() + within
    interrupted = False
    while not future.done():
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            break
        try:
            await asyncio.wait({future}, timeout=remaining)
        except asyncio.CancelledError:
            interrupted = True
    return interrupted


async def _spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: Limits,
    pass_fds: Iterable[int],
) -> tuple[asyncio.SubprocessTransport, _Collector]:
    """Start the process; a cancellation that arrives meanwhile kills its tree once it exists.

    asyncio's own clean-up of a cancelled spawn kills only the leader, then waits for pipes
    that the rest of the tree may hold open for ever.
    """
    loop = asyncio.get_running_loop()
    spawning = asyncio.ensure_future(
        loop.subprocess_exec(
            lambda: _Collector(loop, limits.max_output_bytes),
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    )
    if await wait_uninterrupted(spawning):
        if spawning.exception() is None:
            await _end(*spawning.result())
        raise asyncio.CancelledError
    return spawning.result()


async def _end(transport: asyncio.SubprocessTransport, collector: _Collector) -> bool:
    """Kill what is left of the tree, give its pipes a moment to close, then close them.

    Returns whether a cancellation arrived meanwhile.
    """
    kill_tree(transport.get_pid())
    interrupted = await wait_uninterrupted(collector.closed, within=_SETTLE_S)
    transport.close()
    return interrupted


def kill_tree(pid: int) -> None:
    """SIGKILL the process group led by pid and every descendant found under /proc.

    Everything is stopped first, so that no process forks or slips away to init (as bwrap's
    child does if its parent dies before it asked to die with it) while the tree is walked.
    """
    _signal_group(pid, signal.SIGSTOP)
    stopped: set[int] = set()
    while fresh := set(_descendants(pid)) - stopped:
        for child in fresh:
            _signal(child, signal.SIGSTOP)
        stopped |= fresh
    _signal_group(pid, signal.SIGKILL)
    for child in stopped:
        _signal(child, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _descendants(pid: int) -> list[int]:
    children = _children_by_parent()
    found: list[int] = []
    frontier = [pid]
    while frontier:
        kids = children.get(frontier.pop(), [])
        found.extend(kids)
        frontier.extend(kids)
    return found


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            parent = _parent_of(entry.name)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    return children


def _parent_of(pid: str) -> int | None:
    try:
        stat = Path("/proc", pid, "stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the fields after the last ')' do not.
    return int(stat.rpartition(")")[2].split()[1])


class _Tail:
    """The last `cap` bytes of a stream, and whether anything was dropped."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.dropped = False

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - self.cap
        if excess > 0:
            del self.data[:excess]
            self.dropped = True

    def text(self) -> str:
        start = 0
        # A cut can land inside a UTF-8 sequence; skip its continuation bytes.
        while self.dropped and start < min(3, len(self.data)) and self.data[start] & 0xC0 == 0x80:
            start += 1
        return self.data[start:].decode("utf-8", errors="replace")


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the tail of stdout and stderr, and signals exit and the closing of all pipes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: int) -> None:
        self.streams = {1: _Tail(cap), 2: _Tail(cap)}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.streams[fd].feed(data.encode() if isinstance(data, str) else data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def result(self, *, returncode: int | None, timed_out: bool, duration_s: float) -> RunResult:
        out, err = self.streams[1], self.streams[2]
        return RunResult(
            exit_code=None if timed_out else _shell_status(returncode),
            stdout=out.text(),
            stderr=err.text(),
            timed_out=timed_out,
            cancelled=False,
            duration_s=duration_s,
            truncated=out.dropped or err.dropped,
        )


def _shell_status(returncode: int | None) -> int | None:
    if returncode is None or returncode >= 0:
        return returncode
    return 128 - returncode
