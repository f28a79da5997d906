"""A run's steps as people read them: the check run's step table and verification results,
and the whole transcript that `bosun task show` prints."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STEP_ROWS = 40  # steps shown in a check run; the transcript keeps them all
OUTPUT_LINES = 30  # lines of a failing check's output shown in the check run
ARGUMENT_CHARS = 80


@dataclass(frozen=True, kw_only=True)
class StepLine:
    """One step of a run: a setup or verify command, or one of the agent's tool calls."""

    attempt: int
    phase: str
    name: str
    ok: bool
    exit_code: int | None = None
    duration_ms: float = 0.0
    output: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)


def steps_table(steps: Sequence[StepLine], *, rows: int = STEP_ROWS) -> str:
    """A compact table of the steps, the last `rows` of them when there are more."""
    if not steps:
        return "No steps recorded."
    shown = steps[-rows:]
    lines = ["| # | phase | step | result | time |", "|---|---|---|---|---|"]
    first = len(steps) - len(shown) + 1
    for number, step in enumerate(shown, start=first):
        what = f"`{_cell(step.name)}` {_cell(_arguments(step))}".strip()
        lines.append(
            f"| {number} | {step.phase} | {what} | {_result(step)} | {_seconds(step.duration_ms)} |"
        )
    if len(steps) > len(shown):
        lines.insert(0, f"The last {len(shown)} of {len(steps)} steps:\n")
    return "\n".join(lines)


def checks_section(checks: Sequence[StepLine]) -> str:
    """The verification results: each command, its exit code and time, and the end of the
    output of each that failed."""
    if not checks:
        return "No verification commands are configured (`verify` in `.bosun/`)."
    lines = ["| check | result | time |", "|---|---|---|"]
    for check in checks:
        name, result, took = _cell(check.name), _result(check), _seconds(check.duration_ms)
        lines.append(f"| `{name}` | {result} | {took} |")
    for check in checks:
        if not check.ok:
            tail = "\n".join(check.output.splitlines()[-OUTPUT_LINES:]) or "(no output)"
            lines += [
                "",
                f"<details><summary><code>{_cell(check.name)}</code>: {_result(check)}</summary>",
                "",
                "```text",
                tail.replace("```", "``\u200b`"),
                "```",
                "</details>",
            ]
    return "\n".join(lines)


def transcript(steps: Sequence[StepLine]) -> str:
    """Every step, in order, with its arguments and the output it returned (for a terminal)."""
    blocks: list[str] = []
    attempt = None
    for step in steps:
        if step.attempt != attempt:
            attempt = step.attempt
            blocks.append(f"--- attempt {attempt} ---")
        head = f"[{step.phase}] {step.name} {_arguments(step, limit=400)}".rstrip()
        blocks.append(f"{head}  -> {_result(step)} in {_seconds(step.duration_ms)}")
        if step.output:
            blocks.append("    " + step.output.rstrip().replace("\n", "\n    "))
    return "\n".join(blocks) or "No steps recorded."


def _arguments(step: StepLine, *, limit: int = ARGUMENT_CHARS) -> str:
    if not step.arguments:
        return ""
    text = json.dumps(dict(step.arguments), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _result(step: StepLine) -> str:
    if step.exit_code is not None:
        return f"{'passed' if step.ok else 'failed'} (exit {step.exit_code})"
    return "ok" if step.ok else "failed"


def _seconds(duration_ms: float) -> str:
    return f"{duration_ms / 1000:.1f}s"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell and inline code."""
    return " ".join(text.split()).replace("|", "\\|").replace("`", "'")
