"""Recording a run's steps as it takes them, secrets redacted, and reading them back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.redaction import Redactor
from bot.execution.verify import CheckResult
from bot.store import NewStep, Store


@dataclass(frozen=True, kw_only=True)
class Recorder:
    """The transcript of one attempt of one task."""

    store: Store
    task_id: int
    attempt: int
    redact: Redactor

    async def step(
        self,
        *,
        phase: str,
        name: str,
        ok: bool,
        exit_code: int | None = None,
        duration_ms: float = 0.0,
        output: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        await self.steps([self.new(phase, name, ok, exit_code, duration_ms, output, arguments)])

    async def steps(self, steps: Sequence[NewStep]) -> None:
        await asyncio.to_thread(self.store.transcripts.add, list(steps))

    async def checks(self, phase: str, results: Sequence[CheckResult]) -> None:
        """Setup or verify commands, each a step with its exit code and output."""
        await self.steps(
            [
                self.new(
                    phase,
                    result.command,
                    result.ok,
                    result.exit_code,
                    result.duration_s * 1000,
                    result.output,
                    None,
                )
                for result in results
            ]
        )

    def new(
        self,
        phase: str,
        name: str,
        ok: bool,
        exit_code: int | None,
        duration_ms: float,
        output: str,
        arguments: Mapping[str, Any] | None,
    ) -> NewStep:
        return NewStep(
            task_id=self.task_id,
            attempt=self.attempt,
            phase=phase,
            name=self.redact(name),
            ok=ok,
            exit_code=exit_code,
            duration_ms=duration_ms,
            output=self.redact(output),
            arguments=_redacted(arguments or {}, self.redact),
        )


def _redacted(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(key): _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item, redact) for item in value]
    return value
