"""The model seam of the built-in runtime: turns, tool calls, the client Protocol and its errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolCall:
    """One tool the model asked for; `arguments` is the JSON text exactly as the model sent it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelTurn:
    """What the model answered: text, tool calls, or both."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)

    def as_message(self) -> dict[str, Any]:
        """This turn as the OpenAI-style assistant message that goes back into the history."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message


class ModelClient(Protocol):
    """Answers one turn of a conversation, with the tools the model may call.

    Raises `BudgetExhausted` when the task may not spend more, and `ModelError` when the
    model could not answer after the client's own retries and fallbacks.
    """

    async def complete(
        self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> ModelTurn: ...


class BudgetExhausted(Exception):
    """The task has spent its model budget; no further call is made."""

    def __init__(self, *, spent_usd: float, budget_usd: float) -> None:
        super().__init__(f"model budget spent: ${spent_usd:.4f} of ${budget_usd:.4f}")
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd


class ModelErrorKind(enum.StrEnum):
    """Why a model call failed, in the few kinds that decide what happens next."""

    AUTH = "auth"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    CONTEXT_WINDOW = "context_window"
    CONTENT_POLICY = "content_policy"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    PROVIDER = "provider"
    OTHER = "other"

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later (transient), as opposed to never."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        ModelErrorKind.RATE_LIMIT,
        ModelErrorKind.TIMEOUT,
        ModelErrorKind.CONNECTION,
        ModelErrorKind.PROVIDER,
    }
)


class ModelError(Exception):
    """A model call failed after the client's retries and fallbacks.

    `kind` says why; `retryable` says whether a later attempt of the task may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ModelErrorKind,
        model: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.model = model
        self.status_code = status_code

    @property
    def retryable(self) -> bool:
        return self.kind.retryable
