"""Shared fixtures: a fake clock, and stores on both real databases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from gidgethub import sansio

from bot.config.source import ConfigProvider
from bot.github.client import GitHubClient
from bot.handlers import router
from bot.store import Store
from bot.tasks.context import HandlerContext
from tests.databases import postgres_database, truncate_all
from tests.fakeclock import FakeClock

pytest_plugins = ["tests.github_fixtures", "tests.sandbox_fixtures", "tests.loop_fixtures"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        store = Store.connect(url, clock=FakeClock())
        store.migrate()
        store.close()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """The same suite runs on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bosun.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        truncate_all(url)
    store = Store.connect(url, clock=clock)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    store = Store.connect(f"sqlite:///{tmp_path / 'bosun.db'}", clock=clock)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def dispatch(
    store: Store, github_via_prism: GitHubClient, clock: FakeClock
) -> Callable[[sansio.Event], Awaitable[None]]:
    """Send an event through Bosun's real router, with GitHub behind Prism."""
    configs = ConfigProvider(github_via_prism)

    async def send(event: sansio.Event) -> None:
        context = HandlerContext(
            store=store,
            github=github_via_prism,
            configs=configs,
            clock=clock,
            delivery_id=event.delivery_id,
        )
        await router.dispatch(event, context)

    return send
