"""`bosun bench startup`: wall time of `bosun --help` in fresh interpreters."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from bot.bench.report import machine_line, percentile

TARGET_MS = 500.0


def bosun_command() -> list[str]:
    beside = Path(sys.executable).with_name("bosun")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("bosun")
    return [found] if found else [sys.executable, "-m", "bot.cli"]


def run(*, runs: int) -> None:
    command = [*bosun_command(), "--help"]
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - our own command
        timings.append((time.perf_counter() - started) * 1000)
    p50, worst = percentile(timings, 0.5), max(timings)
    print(f"`{' '.join(command)}` over {runs} runs: median {p50:.0f} ms, max {worst:.0f} ms")
    print(f"target: under {TARGET_MS:.0f} ms -> {'met' if worst < TARGET_MS else 'MISSED'}")
    print(machine_line("startup", {"runs": runs, "p50_ms": p50, "max_ms": worst}))
