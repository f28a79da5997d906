"""Model routing and cost on litellm: the only importer of litellm, and where budgets are enforced.

One `LLM` per process holds litellm's settings, a router per list of models and the
response cache. `LLM.for_task` hands each task run a `TaskModel`, the runtime's
`ModelClient`: it routes over the tier's models (first the primary, then the
fallbacks), prices every call from litellm's bundled price map, records it, and stops
the task at its budget. Provider keys stay in this process's environment, where
litellm reads them; nothing here logs them.
"""

from __future__ import annotations

import collections
import copy
import functools
import hashlib
import importlib
import inspect
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sandbox.runtime.model import BudgetExhausted, ModelError, ModelErrorKind, ModelTurn, ToolCall
from sandbox.runtime.script import ScriptedTurn

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
_ERROR_TEXT_CHARS = 500
_LITELLM_FLAGS = ("suppress_debug_info", "turn_off_message_logging")
# Callbacks are how litellm sends call data elsewhere; Bosun records calls itself.
_LITELLM_CALLBACKS = ("callbacks", "success_callback", "failure_callback")

Record = Callable[["ModelCall"], Awaitable[None] | None]


@dataclass(frozen=True)
class ModelCall:
    """One model call as recorded for cost reports and budgets.

    `cost_usd` comes from litellm's bundled price map; `priced` is False for a model the
    map does not know, whose cost is then 0.0. A cache hit sent nothing to a provider:
    no tokens, no cost. A failed call has `error` set and costs nothing.
    """

    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    priced: bool
    cache_hit: bool
    latency_ms: float
    fallbacks: int = 0
    error: str | None = None


@functools.cache
def load_litellm() -> ModuleType:
    """litellm, imported on first use, reading its bundled price map and sending nothing home.

    It takes seconds to import, so only code that calls models imports it, once.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Every catalogue, check or tokenizer litellm would fetch by itself comes from its
    # bundled copies instead; calls to the providers Bosun is configured for still go out.
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    # Outside "PRODUCTION" litellm loads a `.env` from the working directory into the
    # process's environment at import: keys Bosun was not given would appear.
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
    # Loaded by name: mypy would spend a minute following litellm's 3,000 modules.
    litellm = importlib.import_module("litellm")
    for flag in _LITELLM_FLAGS:
        setattr(litellm, flag, True)
    for callbacks in _LITELLM_CALLBACKS:
        setattr(litellm, callbacks, [])
    # litellm prints its own plain-text lines; Bosun's log is JSON, and errors reach it
    # as `ModelError`s.
    for name in _LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return litellm


def model_error(litellm: ModuleType, exc: Exception, *, model: str) -> ModelError:
    """The `ModelError` that stands for an exception litellm raised (a flat decision table)."""
    code = getattr(exc, "status_code", None)
    status = code if isinstance(code, int) else None
    table: tuple[tuple[type[Exception], ModelErrorKind], ...] = (
        (litellm.ContextWindowExceededError, ModelErrorKind.CONTEXT_WINDOW),
        (litellm.ContentPolicyViolationError, ModelErrorKind.CONTENT_POLICY),
        (litellm.AuthenticationError, ModelErrorKind.AUTH),
        (litellm.PermissionDeniedError, ModelErrorKind.AUTH),
        (litellm.NotFoundError, ModelErrorKind.NOT_FOUND),
        (litellm.RateLimitError, ModelErrorKind.RATE_LIMIT),
        (litellm.Timeout, ModelErrorKind.TIMEOUT),
        (litellm.APIConnectionError, ModelErrorKind.CONNECTION),
        (litellm.BadRequestError, ModelErrorKind.BAD_REQUEST),
        (litellm.UnprocessableEntityError, ModelErrorKind.BAD_REQUEST),
        (litellm.InternalServerError, ModelErrorKind.PROVIDER),
        (litellm.ServiceUnavailableError, ModelErrorKind.PROVIDER),
        (litellm.BadGatewayError, ModelErrorKind.PROVIDER),
    )
    kind = next((kind for cls, kind in table if isinstance(exc, cls)), None)
    if kind is None:
        kind = _kind_of_status(status)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    message = f"{model}: {kind.value}: {text[:_ERROR_TEXT_CHARS]}"
    return ModelError(message, kind=kind, model=model, status_code=status)


def _kind_of_status(status: int | None) -> ModelErrorKind:
    if status is None:
        return ModelErrorKind.OTHER
    if status == 429:
        return ModelErrorKind.RATE_LIMIT
    if status == 408:
        return ModelErrorKind.TIMEOUT
    if status >= 500:
        return ModelErrorKind.PROVIDER
    return ModelErrorKind.BAD_REQUEST


class LLM:
    """litellm for the whole process: settings, a router per model list, and the response cache.

    `retries` bounds the retries of each model before its fallbacks are tried.
    `deployments` adds litellm parameters per model name (such as `api_base`); provider
    keys never go there, litellm reads them from the environment.
    """

    def __init__(
        self,
        *,
        retries: int = 2,
        cache_size: int = 1024,
        deployments: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if retries < 0 or cache_size < 0:
            raise ValueError("retries and cache_size must not be negative")
        for model, params in (deployments or {}).items():
            if "api_key" in params:
                raise ValueError(f"{model}: provider keys come from the environment, not here")
        self.litellm = load_litellm()
        self.retries = retries
        self.cache = ResponseCache(cache_size)
        self._deployments = {model: dict(params) for model, params in (deployments or {}).items()}
        self._routers: dict[tuple[str, ...], Any] = {}

    def for_task(
        self,
        *,
        models: Sequence[str],
        budget_usd: float,
        spent_usd: float = 0.0,
        record: Record,
        scope: str,
        script: Sequence[ScriptedTurn] | None = None,
        timeout: float = 120,
    ) -> TaskModel:
        """The model client of one task run: `models` in order of preference, within budget.

        The response cache answers only within `scope` (one attempt of one task): a retry is
        never served the answers of the attempt that failed.

        With `script`, each call still goes through litellm, answered by the script's next
        turn as a mocked response, so routing, token counts and prices are real.
        """
        tier = tuple(dict.fromkeys(models))
        if not tier:
            raise ValueError("a task needs at least one model")
        return TaskModel(
            llm=self,
            models=tier,
            budget_usd=budget_usd,
            spent_usd=spent_usd,
            record=record,
            scope=scope,
            script=None if script is None else list(script),
            timeout=timeout,
        )

    def router(self, models: tuple[str, ...]) -> Any:
        """The litellm Router over `models`: the first serves, the rest are its fallbacks."""
        router = self._routers.get(models)
        if router is None:
            for model in models:
                _is_priced(self.litellm, model)
            model_list = [
                {"model_name": model, "litellm_params": {"model": model, **self._params(model)}}
                for model in models
            ]
            fallbacks = [{models[0]: list(models[1:])}] if len(models) > 1 else []
            router = self.litellm.Router(
                model_list=model_list, fallbacks=fallbacks, num_retries=self.retries
            )
            self._routers[models] = router
        return router

    def _params(self, model: str) -> dict[str, Any]:
        return self._deployments.get(model, {})

    def price(self, response: Any, *, model: str) -> tuple[float, bool]:
        """The cost of a response by litellm's bundled price map, and whether the map knows it."""
        if not _is_priced(self.litellm, model):
            return 0.0, False
        try:
            cost = self.litellm.completion_cost(completion_response=response, model=model)
        except Exception:
            return 0.0, False
        return float(cost), True


# Whether litellm's bundled map prices a model, looked up before any Router knows the model:
# a Router adds an empty entry for each of its models, which litellm then reads as free.
_PRICED: dict[str, bool] = {}


def is_priced(model: str) -> bool:
    """Whether litellm's bundled price map prices `model`; an unpriced model is never free."""
    return _is_priced(load_litellm(), model)


def _is_priced(litellm: ModuleType, model: str) -> bool:
    if model not in _PRICED:
        try:
            info = litellm.get_model_info(model)
        except Exception:
            _PRICED[model] = False
        else:
            _PRICED[model] = info.get("input_cost_per_token") is not None
    return _PRICED[model]


@dataclass(frozen=True)
class _Cached:
    turn: ModelTurn
    model: str


class ResponseCache:
    """Answers of past requests, keyed by models, messages and tools; the oldest go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: collections.OrderedDict[str, _Cached] = collections.OrderedDict()

    @staticmethod
    def key(
        scope: str,
        models: Sequence[str],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> str:
        text = json.dumps([scope, list(models), messages, tools], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> _Cached | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, entry: _Cached) -> None:
        if self.size == 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class TaskModel:
    """One task run's `ModelClient`: routed, priced, recorded, cached and held to a budget."""

    def __init__(
        self,
        *,
        llm: LLM,
        models: tuple[str, ...],
        budget_usd: float,
        spent_usd: float,
        record: Record,
        scope: str,
        script: list[ScriptedTurn] | None,
        timeout: float,
    ) -> None:
        self.llm = llm
        self.scope = scope
        self.models = models
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        self.timeout = timeout
        self._record = record
        self._script = script
        self._turns = 0

    async def complete(
        self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> ModelTurn:
        """The next turn; `BudgetExhausted` once the task has spent its budget."""
        if self.spent_usd >= self.budget_usd:
            raise BudgetExhausted(spent_usd=self.spent_usd, budget_usd=self.budget_usd)
        started = time.monotonic()
        key = self.llm.cache.key(self.scope, self.models, messages, tools)
        cached = self.llm.cache.get(key)
        if cached is not None:
            self._turns += 1
            await self._keep(_cache_hit(cached, started))
            return cached.turn
        response = await self._call(messages, tools, started)
        turn = _turn_of(response, model=self.models[0])
        self.llm.cache.put(key, _Cached(turn=turn, model=_served_model(response, self.models)))
        return turn

    async def _call(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], started: float
    ) -> Any:
        request: dict[str, Any] = {"messages": copy.deepcopy(messages), "timeout": self.timeout}
        if tools:
            request["tools"] = copy.deepcopy(tools)
        if self._script is not None:
            request["mock_response"] = self._scripted(messages, tools)
        self._turns += 1
        scripted_failure = request.get("mock_response")
        try:
            if isinstance(scripted_failure, ModelError):
                raise scripted_failure
            response = await self.llm.router(self.models).acompletion(
                model=self.models[0], **request
            )
        except ModelError as failed:
            await self._keep(_failed(self.models[0], failed, started))
            raise
        except Exception as exc:
            error = model_error(self.llm.litellm, exc, model=self.models[0])
            await self._keep(_failed(self.models[0], error, started))
            raise error from exc
        await self._keep(self._measure(response, started))
        return response

    def _scripted(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        """The script's next turn as a litellm response, with token counts of this request."""
        assert self._script is not None
        if self._turns >= len(self._script):
            raise ModelError(
                f"the model script has no turn left after {len(self._script)}",
                kind=ModelErrorKind.OTHER,
                model=self.models[0],
            )
        scripted = self._script[self._turns]
        if scripted.error is not None:  # a scripted provider failure, as litellm would map it
            return ModelError(
                f"scripted {scripted.error} error", kind=scripted.error, model=self.models[0]
            )
        message = scripted.message(turn=self._turns)
        litellm, model = self.llm.litellm, self.models[0]
        prompt = int(litellm.token_counter(model=model, messages=messages, tools=tools or None))
        answer = json.dumps([message["content"], message.get("tool_calls", [])])
        completion = max(1, int(litellm.token_counter(model=model, text=answer)))
        return litellm.ModelResponse(
            choices=[
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
                    "message": message,
                }
            ],
            usage=litellm.Usage(
                prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
            ),
        )

    def _measure(self, response: Any, started: float) -> ModelCall:
        model = _served_model(response, self.models)
        cost, priced = self.llm.price(response, model=model)
        usage = getattr(response, "usage", None)
        headers = _hidden(response).get("additional_headers") or {}
        return ModelCall(
            model=model,
            tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=cost,
            priced=priced,
            cache_hit=False,
            latency_ms=_elapsed_ms(started),
            fallbacks=int(headers.get("x-litellm-attempted-fallbacks") or 0),
        )

    async def _keep(self, call: ModelCall) -> None:
        self.spent_usd += call.cost_usd
        outcome = self._record(call)
        if inspect.isawaitable(outcome):
            await outcome


def _hidden(response: Any) -> dict[str, Any]:
    hidden = getattr(response, "_hidden_params", None)
    return hidden if isinstance(hidden, dict) else {}


def _served_model(response: Any, models: tuple[str, ...]) -> str:
    """The model (as the tier names it) whose deployment answered."""
    hidden = _hidden(response)
    group = (hidden.get("additional_headers") or {}).get("x-litellm-model-group")
    for name in (group, hidden.get("litellm_model_name"), getattr(response, "model", None)):
        if isinstance(name, str) and name:
            return name
    return models[0]


def _turn_of(response: Any, *, model: str) -> ModelTurn:
    choices = getattr(response, "choices", None)
    if not choices:
        raise ModelError(f"{model}: the answer holds no message", kind=ModelErrorKind.OTHER)
    message = choices[0].message
    calls = [
        ToolCall(id=str(call.id), name=str(call.function.name), arguments=_text(call.function))
        for call in message.tool_calls or []
    ]
    content = message.content if isinstance(message.content, str) else None
    return ModelTurn(content=content, tool_calls=calls)


def _text(function: Any) -> str:
    """A call's arguments as JSON text, as some providers hand them over already decoded."""
    arguments = function.arguments
    if arguments is None:
        return ""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _cache_hit(cached: _Cached, started: float) -> ModelCall:
    return ModelCall(
        model=cached.model,
        tokens_in=0,
        tokens_out=0,
        cost_usd=0.0,
        priced=True,
        cache_hit=True,
        latency_ms=_elapsed_ms(started),
    )


def _failed(model: str, error: ModelError, started: float) -> ModelCall:
    return ModelCall(
        model=model,
        tokens_in=0,
        tokens_out=0,
        cost_usd=0.0,
        priced=True,
        cache_hit=False,
        latency_ms=_elapsed_ms(started),
        error=error.message,
    )


def _elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
