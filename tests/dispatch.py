"""Events through Bosun's real router, as a fresh process would handle them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gidgethub import sansio

from bot.config.source import ConfigProvider
from bot.execution.publication import Publisher
from bot.github.client import GitHubClient
from bot.handlers import router
from bot.store import Store
from bot.tasks.context import HandlerContext
from tests.fakeclock import FakeClock

Dispatch = Callable[[sansio.Event], Awaitable[None]]


def dispatcher(
    store: Store, github: GitHubClient, clock: FakeClock, *, remember_configs: bool = True
) -> Dispatch:
    """The real handler chain with its own ConfigProvider and Publisher."""
    configs = ConfigProvider(github, good=store.configs if remember_configs else None)
    publisher = Publisher(github=github, store=store, clock=clock)

    async def send(event: sansio.Event) -> None:
        context = HandlerContext(
            store=store,
            github=github,
            configs=configs,
            clock=clock,
            delivery_id=event.delivery_id,
            publisher=publisher,
        )
        await router.dispatch(event, context)

    return send
