"""The built-in agent: a tool-calling loop over an injected model, with step and budget stops."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.backends.base import Backend, Limits
from sandbox.runtime.model import (
    BudgetExhausted,
    ModelClient,
    ModelError,
    ModelErrorKind,
    ModelTurn,
)
from sandbox.runtime.tools import Toolbox


class AgentStatus(enum.StrEnum):
    """How a run of the built-in agent ended."""

    FINISHED = "finished"
    STEP_LIMIT = "step_limit"
    BUDGET = "budget"
    ERROR = "error"


@dataclass(frozen=True)
class StepEvent:
    """One step done: the model answered and the tools it asked for ran.

    `files_changed` holds every file written so far, so a watcher can tell progress.
    """

    step: int
    tool_calls: tuple[str, ...]
    failed_calls: int
    files_changed: tuple[str, ...]
    call_keys: tuple[str, ...] = ()  # each call as `name(arguments)`, to spot repetition


@dataclass(frozen=True)
class AgentResult:
    """The end of a run: why it stopped, the model's summary, and what the tools did.

    `files_changed` comes from the tools' own record of writes and edits; `error_kind` is
    set when a model error ended the run.
    """

    status: AgentStatus
    summary: str
    steps: int
    tool_calls: int
    files_changed: list[str]
    error_kind: ModelErrorKind | None = None


async def run_agent(
    *,
    model: ModelClient,
    system_prompt: str,
    task_prompt: str,
    worktree: Path,
    backend: Backend,
    tools: Sequence[str],
    commands: Sequence[str],
    limits: Limits,
    max_steps: int,
    on_step: Callable[[StepEvent], Awaitable[None]] | None = None,
) -> AgentResult:
    """Let the model work on the worktree with the tools until it answers without a tool call.

    It stops early at `max_steps` model turns, when the model client refuses for budget,
    or when the model fails. `task_prompt` carries any untrusted text already quoted.
    """
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    toolbox = Toolbox(
        worktree=worktree, backend=backend, tools=tools, commands=commands, limits=limits
    )
    session = _Session(toolbox=toolbox, system_prompt=system_prompt, task_prompt=task_prompt)
    for step in range(1, max_steps + 1):
        try:
            turn = await model.complete(messages=session.messages, tools=toolbox.schemas)
        except BudgetExhausted as exc:
            return session.result(AgentStatus.BUDGET, str(exc))
        except ModelError as exc:
            return session.result(AgentStatus.ERROR, f"the model failed: {exc}", kind=exc.kind)
        event = await session.take(step, turn)
        if on_step is not None:
            await on_step(event)
        if not turn.tool_calls:
            return session.result(AgentStatus.FINISHED, turn.content or "")
    return session.result(AgentStatus.STEP_LIMIT, session.step_limit_summary(max_steps))


class _Session:
    """The conversation of one run and its counters."""

    def __init__(self, *, toolbox: Toolbox, system_prompt: str, task_prompt: str) -> None:
        self.toolbox = toolbox
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": task_prompt},
        ]
        self.steps = 0
        self.tool_calls = 0
        self.last_content: str | None = None

    async def take(self, step: int, turn: ModelTurn) -> StepEvent:
        """Add the model's turn to the history, run its tool calls in order, add their results."""
        self.steps = step
        self.last_content = turn.content or self.last_content
        self.messages.append(turn.as_message())
        failed = 0
        for call in turn.tool_calls:
            outcome = await self.toolbox.call(call.name, call.arguments)
            self.tool_calls += 1
            failed += not outcome.ok
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.text})
        names = tuple(call.name for call in turn.tool_calls)
        return StepEvent(
            step=step,
            tool_calls=names,
            failed_calls=failed,
            files_changed=tuple(self.toolbox.changed),
            call_keys=tuple(f"{call.name}({call.arguments})" for call in turn.tool_calls),
        )

    def step_limit_summary(self, max_steps: int) -> str:
        summary = f"stopped after {max_steps} steps without a final answer"
        if self.last_content:
            summary += f"; the model last said: {self.last_content}"
        return summary

    def result(
        self, status: AgentStatus, summary: str, *, kind: ModelErrorKind | None = None
    ) -> AgentResult:
        return AgentResult(
            status=status,
            summary=summary,
            steps=self.steps,
            tool_calls=self.tool_calls,
            files_changed=self.toolbox.changed,
            error_kind=kind,
        )
