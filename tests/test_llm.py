"""The model client on litellm: routing, fallbacks, prices, the cache, budgets and error mapping."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.llm.client import LLM, ModelCall, load_litellm, model_error
from sandbox.runtime.model import BudgetExhausted, ModelError, ModelErrorKind
from sandbox.runtime.script import parse_script

ROOT = Path(__file__).resolve().parent.parent
PRICED = "gpt-4o-mini"
UNPRICED = "openai/bosun-test-unlisted-model"
SCRIPT = parse_script(
    [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]},
        {"content": "Done: README.md read."},
    ]
)


def messages(text: str = "Fix the typo in README.md.") -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are careful."}, {"role": "user", "content": text}]


@pytest.fixture
def llm() -> LLM:
    return LLM(retries=0)


async def test_every_call_is_recorded_with_tokens_and_a_price_from_the_bundled_map(
    llm: LLM,
) -> None:
    """Each model call is recorded with its tokens and its cost from litellm's offline prices."""
    calls: list[ModelCall] = []
    model = llm.for_task(
        scope="acme/app#1/1", models=[PRICED], budget_usd=1.0, record=calls.append, script=SCRIPT
    )

    first = await model.complete(messages=messages(), tools=[])
    second = await model.complete(messages=[*messages(), first.as_message()], tools=[])

    assert [call.name for call in first.tool_calls] == ["read_file"]
    assert first.tool_calls[0].arguments == '{"path": "README.md"}'
    assert second.content == "Done: README.md read."
    assert len(calls) == 2
    litellm = load_litellm()
    for call in calls:
        assert call.model == PRICED
        assert call.priced and not call.cache_hit and call.error is None
        assert call.tokens_in > 10 and call.tokens_out > 0
        assert call.latency_ms >= 0
        prompt, completion = litellm.cost_per_token(
            model=PRICED, prompt_tokens=call.tokens_in, completion_tokens=call.tokens_out
        )
        assert call.cost_usd == pytest.approx(prompt + completion)
        assert call.cost_usd > 0
    assert calls[1].tokens_in > calls[0].tokens_in
    assert model.spent_usd == pytest.approx(sum(call.cost_usd for call in calls))


async def test_a_model_missing_from_the_price_map_costs_nothing_and_says_so(llm: LLM) -> None:
    """A model litellm has no price for is recorded at $0 with `priced` False, not guessed."""
    calls: list[ModelCall] = []
    model = llm.for_task(
        scope="acme/app#1/1", models=[UNPRICED], budget_usd=1.0, record=calls.append, script=SCRIPT
    )

    await model.complete(messages=messages(), tools=[])

    assert len(calls) == 1
    assert calls[0].model == UNPRICED
    assert calls[0].cost_usd == 0.0 and not calls[0].priced
    assert calls[0].tokens_in > 0


async def test_the_second_model_answers_when_the_first_fails() -> None:
    """A tier's later models are fallbacks: when the first fails, the next one answers."""
    llm = LLM(
        retries=0,
        deployments={
            "gpt-4o": {"mock_response": Exception("provider down")},
            PRICED: {"mock_response": "answered by the fallback"},
        },
    )
    calls: list[ModelCall] = []
    model = llm.for_task(
        scope="acme/app#1/1", models=["gpt-4o", PRICED], budget_usd=1.0, record=calls.append
    )

    turn = await model.complete(messages=messages(), tools=[])

    assert turn.content == "answered by the fallback"
    assert len(calls) == 1
    assert calls[0].model == PRICED
    assert calls[0].fallbacks == 1
    assert calls[0].cost_usd > 0 and calls[0].error is None


async def test_a_call_every_model_fails_is_recorded_and_raised_as_a_model_error() -> None:
    """When every model of the tier fails, the failure is recorded and the task sees why."""
    llm = LLM(
        retries=0,
        deployments={
            "gpt-4o": {"mock_response": "litellm.RateLimitError"},
            PRICED: {"mock_response": "litellm.RateLimitError"},
        },
    )
    calls: list[ModelCall] = []
    model = llm.for_task(
        scope="acme/app#1/1", models=["gpt-4o", PRICED], budget_usd=1.0, record=calls.append
    )

    with pytest.raises(ModelError) as raised:
        await model.complete(messages=messages(), tools=[])

    assert raised.value.kind is ModelErrorKind.RATE_LIMIT and raised.value.retryable
    assert len(calls) == 1
    assert calls[0].error is not None and calls[0].cost_usd == 0.0


async def test_a_repeated_identical_request_is_served_from_the_cache_at_no_cost(
    llm: LLM,
) -> None:
    """The same request twice costs once: the second answer comes from the cache at $0."""
    calls: list[ModelCall] = []
    first = llm.for_task(
        scope="acme/app#1/1", models=[PRICED], budget_usd=1.0, record=calls.append, script=SCRIPT
    )
    again = llm.for_task(
        scope="acme/app#1/1", models=[PRICED], budget_usd=1.0, record=calls.append, script=SCRIPT
    )

    answer = await first.complete(messages=messages(), tools=[])
    cached = await again.complete(messages=messages(), tools=[])

    assert cached == answer
    assert [call.cache_hit for call in calls] == [False, True]
    assert calls[1].cost_usd == 0.0
    assert calls[1].tokens_in == calls[1].tokens_out == 0
    assert calls[1].model == PRICED
    assert again.spent_usd == 0.0


async def test_a_retried_attempt_is_never_served_the_failed_attempts_answers(llm: LLM) -> None:
    """Attempt 2 asks exactly what attempt 1 asked: it gets a fresh answer, never attempt 1's,
    and pays for it; within one attempt the cache still answers a repeat."""
    calls: list[ModelCall] = []
    turns = parse_script([{"content": "first try"}, {"content": "second try"}])
    first = llm.for_task(
        scope="acme/app#1/1", models=[PRICED], budget_usd=1.0, record=calls.append, script=turns
    )
    retry = llm.for_task(
        scope="acme/app#1/2", models=[PRICED], budget_usd=1.0, record=calls.append, script=turns[1:]
    )

    failed = await first.complete(messages=messages(), tools=[])
    again = await retry.complete(messages=messages(), tools=[])

    assert (failed.content, again.content) == ("first try", "second try")
    assert [call.cache_hit for call in calls] == [False, False]
    assert calls[1].cost_usd > 0


async def test_the_cache_tells_different_model_lists_apart(llm: LLM) -> None:
    """A cached answer of one model is never served for a request to another model."""
    calls: list[ModelCall] = []
    for models in ([PRICED], [UNPRICED]):
        model = llm.for_task(
            scope="acme/app#1/1", models=models, budget_usd=1.0, record=calls.append, script=SCRIPT
        )
        await model.complete(messages=messages(), tools=[])

    assert [call.cache_hit for call in calls] == [False, False]


async def test_a_task_over_its_budget_makes_no_further_call(llm: LLM) -> None:
    """The call that crosses the budget is recorded; the next one is refused before it is sent."""
    calls: list[ModelCall] = []
    model = llm.for_task(
        scope="acme/app#1/1", models=[PRICED], budget_usd=1e-9, record=calls.append, script=SCRIPT
    )

    turn = await model.complete(messages=messages(), tools=[])
    with pytest.raises(BudgetExhausted) as raised:
        await model.complete(messages=[*messages(), turn.as_message()], tools=[])

    assert len(calls) == 1
    assert raised.value.spent_usd == pytest.approx(calls[0].cost_usd)
    assert raised.value.budget_usd == 1e-9


async def test_a_task_that_spent_its_budget_in_earlier_attempts_calls_nothing(llm: LLM) -> None:
    """What earlier attempts spent counts: a task already at its budget makes no call."""
    calls: list[ModelCall] = []
    model = llm.for_task(
        scope="acme/app#1/1",
        models=[PRICED],
        budget_usd=0.5,
        spent_usd=0.5,
        record=calls.append,
        script=SCRIPT,
    )

    with pytest.raises(BudgetExhausted):
        await model.complete(messages=messages(), tools=[])

    assert calls == []


async def test_calls_are_recorded_through_an_async_recorder(llm: LLM) -> None:
    """A recorder may be a coroutine (a store write); it is awaited before the turn returns."""
    calls: list[ModelCall] = []

    async def record(call: ModelCall) -> None:
        calls.append(call)

    model = llm.for_task(
        scope="acme/app#1/1", models=[PRICED], budget_usd=1.0, record=record, script=SCRIPT
    )
    await model.complete(messages=messages(), tools=[])

    assert len(calls) == 1


async def test_a_script_that_runs_out_of_turns_is_a_model_error(llm: LLM) -> None:
    """A scripted model with no turn left fails the call instead of inventing an answer."""
    script = parse_script([{"content": "only turn"}])
    model = llm.for_task(
        scope="acme/app#1/1",
        models=[PRICED],
        budget_usd=1.0,
        record=lambda call: None,
        script=script,
    )

    await model.complete(messages=messages("one"), tools=[])
    with pytest.raises(ModelError, match="no turn left"):
        await model.complete(messages=messages("two"), tools=[])


def _response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", "https://provider.invalid/v1"))


def _litellm_errors() -> list[tuple[str, Exception, ModelErrorKind]]:
    litellm = load_litellm()
    common = {"message": "boom", "llm_provider": "openai", "model": PRICED}
    return [
        ("auth", litellm.AuthenticationError(**common), ModelErrorKind.AUTH),
        (
            "permission",
            litellm.PermissionDeniedError(**common, response=_response(403)),
            ModelErrorKind.AUTH,
        ),
        ("not found", litellm.NotFoundError(**common), ModelErrorKind.NOT_FOUND),
        ("bad request", litellm.BadRequestError(**common), ModelErrorKind.BAD_REQUEST),
        (
            "unprocessable",
            litellm.UnprocessableEntityError(**common, response=_response(422)),
            ModelErrorKind.BAD_REQUEST,
        ),
        (
            "context window",
            litellm.ContextWindowExceededError(**common),
            ModelErrorKind.CONTEXT_WINDOW,
        ),
        (
            "content policy",
            litellm.ContentPolicyViolationError(**common),
            ModelErrorKind.CONTENT_POLICY,
        ),
        ("rate limit", litellm.RateLimitError(**common), ModelErrorKind.RATE_LIMIT),
        ("timeout", litellm.Timeout(**common), ModelErrorKind.TIMEOUT),
        ("connection", litellm.APIConnectionError(**common), ModelErrorKind.CONNECTION),
        ("internal", litellm.InternalServerError(**common), ModelErrorKind.PROVIDER),
        ("unavailable", litellm.ServiceUnavailableError(**common), ModelErrorKind.PROVIDER),
        ("bad gateway", litellm.BadGatewayError(**common), ModelErrorKind.PROVIDER),
        ("api 529", litellm.APIError(status_code=529, **common), ModelErrorKind.PROVIDER),
        ("api 429", litellm.APIError(status_code=429, **common), ModelErrorKind.RATE_LIMIT),
        ("api 400", litellm.APIError(status_code=400, **common), ModelErrorKind.BAD_REQUEST),
        ("anything else", ValueError("unexpected"), ModelErrorKind.OTHER),
    ]


def test_litellm_exceptions_map_onto_the_runtime_error_kinds() -> None:
    """Provider failures reach the runtime as a few kinds; only transient ones are retryable."""
    retryable = {
        ModelErrorKind.RATE_LIMIT,
        ModelErrorKind.TIMEOUT,
        ModelErrorKind.CONNECTION,
        ModelErrorKind.PROVIDER,
    }
    litellm = load_litellm()
    for label, exc, kind in _litellm_errors():
        error = model_error(litellm, exc, model=PRICED)
        assert (label, error.kind) == (label, kind)
        assert error.retryable == (kind in retryable), label
        assert error.model == PRICED
        assert error.message.startswith(f"{PRICED}: {kind.value}: ")


def test_provider_keys_are_refused_as_deployment_parameters() -> None:
    """Provider keys come from Bosun's environment only, never from configuration passed in."""
    with pytest.raises(ValueError, match="environment"):
        LLM(deployments={PRICED: {"api_key": "sk-not-here"}})


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LITELLM_")}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_model_module_does_not_import_litellm() -> None:
    """`bosun --help` stays fast: litellm loads only when a model client is built."""
    done = _python(
        """
        import sys
        import bot.llm.client
        assert "litellm" not in sys.modules, "litellm imported eagerly"
        """
    )
    assert done.returncode == 0, done.stderr


def test_litellm_loads_and_answers_a_scripted_call_without_the_network() -> None:
    """litellm reads its bundled price map and fetches nothing: no socket is ever opened."""
    done = _python(
        """
        import asyncio, os, socket

        def refuse(*args, **kwargs):
            raise AssertionError(f"network used: {args!r}")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.getaddrinfo = refuse
        socket.create_connection = refuse

        from bot.llm.client import LLM
        from sandbox.runtime.script import parse_script

        llm = LLM()
        assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
        assert "gpt-4o-mini" in llm.litellm.model_cost
        calls = []
        script = parse_script([{"content": "done"}])
        model = llm.for_task(scope="acme/app#1/1",
            models=["gpt-4o-mini"], budget_usd=1.0, record=calls.append, script=script
        )
        turn = asyncio.run(
            model.complete(messages=[{"role": "user", "content": "hi"}], tools=[])
        )
        assert turn.content == "done", turn
        assert calls[0].cost_usd > 0, calls
        print("offline ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert "offline ok" in done.stdout
