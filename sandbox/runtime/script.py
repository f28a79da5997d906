"""Scripted model turns, for `bosun demo` and tests: what a model would answer, read from JSON.

A script is a JSON list of turns, each either a final answer or tool calls::

    [
      {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]},
      {"content": "Fixed the typo in README.md."}
    ]

`arguments` is an object, or a string sent to the runtime as it is (to script a model
that sends malformed JSON). A turn ``{"error": "provider"}`` makes that call fail with a
model error of that kind (see `ModelErrorKind`).

A task that runs more than once (retries, escalation) plays the same script each time, or,
given ``{"attempts": [[...], [...]]}``, the n-th list on the n-th attempt (the last list on
any later one).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.runtime.model import ModelErrorKind

_TURN_KEYS = frozenset({"content", "tool_calls", "error"})
_CALL_KEYS = frozenset({"name", "arguments"})


class ScriptError(ValueError):
    """A script file cannot be read as scripted turns; the message names the turn."""


@dataclass(frozen=True)
class ScriptedCall:
    """A tool call of a scripted turn; `arguments` is JSON text as a model sends it."""

    name: str
    arguments: str


@dataclass(frozen=True)
class ScriptedTurn:
    """One scripted answer of the model: text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ScriptedCall, ...] = ()
    error: ModelErrorKind | None = None  # the call fails with a model error of this kind

    def message(self, *, turn: int) -> dict[str, Any]:
        """This answer as an OpenAI-style assistant message, its call ids numbered by turn.

        A model client feeds it to its provider library as a mocked response.
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{turn}_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for index, call in enumerate(self.tool_calls)
            ]
        return message


@dataclass(frozen=True)
class Script:
    """Scripted turns per attempt of a task: attempt n plays `attempts[n - 1]`, and the last
    list plays again for any attempt after it."""

    attempts: tuple[tuple[ScriptedTurn, ...], ...]

    def for_attempt(self, attempt: int) -> list[ScriptedTurn]:
        index = min(max(attempt, 1), len(self.attempts)) - 1
        return list(self.attempts[index])


def load_script(path: Path | str) -> Script:
    """The script in the JSON file at `path`, or a `ScriptError` that says what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScriptError(f"{path}: cannot read the model script: {exc}") from exc
    try:
        return parse_attempts(data)
    except ScriptError as exc:
        raise ScriptError(f"{path}: {exc}") from None


def parse_attempts(data: object) -> Script:
    """A script from decoded JSON: a list of turns, or ``{"attempts": [turns, ...]}``."""
    if isinstance(data, Mapping):
        attempts = data.get("attempts")
        if set(data) != {"attempts"} or not isinstance(attempts, list) or not attempts:
            raise ScriptError("a script object holds only 'attempts': a non-empty list of lists")
        parsed = []
        for number, turns in enumerate(attempts, start=1):
            try:
                parsed.append(tuple(parse_script(turns)))
            except ScriptError as exc:
                raise ScriptError(f"attempt {number}: {exc}") from None
        return Script(attempts=tuple(parsed))
    return Script(attempts=(tuple(parse_script(data)),))


def parse_script(data: object) -> list[ScriptedTurn]:
    """Scripted turns from decoded JSON: a non-empty list of turn objects."""
    if not isinstance(data, list) or not data:
        raise ScriptError("a model script is a non-empty JSON list of turns")
    return [_turn(index, item) for index, item in enumerate(data)]


def _turn(index: int, item: object) -> ScriptedTurn:
    where = f"turn {index}"
    if not isinstance(item, Mapping) or not item or set(item) - _TURN_KEYS:
        raise ScriptError(f"{where}: expected an object with 'content' and/or 'tool_calls'")
    if "error" in item:
        return _error_turn(where, item)
    content = item.get("content")
    if content is not None and not isinstance(content, str):
        raise ScriptError(f"{where}: 'content' must be a string")
    calls = item.get("tool_calls", [])
    if not isinstance(calls, list) or (not calls and content is None):
        raise ScriptError(f"{where}: 'tool_calls' must be a non-empty list, or give 'content'")
    scripted = (_call(f"{where}, call {number}", call) for number, call in enumerate(calls))
    return ScriptedTurn(content=content, tool_calls=tuple(scripted))


def _error_turn(where: str, item: Mapping[str, Any]) -> ScriptedTurn:
    kinds = ", ".join(kind.value for kind in ModelErrorKind)
    if set(item) != {"error"} or item["error"] not in set(ModelErrorKind):
        raise ScriptError(f"{where}: an error turn is {{'error': <kind>}}, a kind of: {kinds}")
    return ScriptedTurn(error=ModelErrorKind(item["error"]))


def _call(where: str, item: object) -> ScriptedCall:
    if not isinstance(item, Mapping) or set(item) - _CALL_KEYS:
        raise ScriptError(f"{where}: expected an object with 'name' and 'arguments'")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ScriptError(f"{where}: 'name' must be a non-empty string")
    arguments = item.get("arguments", {})
    if isinstance(arguments, str):
        return ScriptedCall(name=name, arguments=arguments)
    if not isinstance(arguments, Mapping):
        raise ScriptError(f"{where}: 'arguments' must be an object or a string")
    return ScriptedCall(name=name, arguments=json.dumps(arguments))
