"""Shared fixtures: a fake clock, and stores on both real databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.github.client import GitHubClient
from bot.store import Store
from tests.databases import postgres_database, truncate_all
from tests.dispatch import Dispatch, dispatcher
from tests.fakeclock import FakeClock

pytest_plugins = [
    "tests.github_fixtures",
    "tests.sandbox_fixtures",
    "tests.loop_fixtures",
    "tests.package_index",
]
# A real project that tests set up and fix in the sandbox: its own tests are its own.
collect_ignore_glob = ["projects/*"]


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
def dispatch(store: Store, github_via_prism: GitHubClient, clock: FakeClock) -> Dispatch:
    """Send an event through Bosun's real router, with GitHub behind Prism."""
    return dispatcher(store, github_via_prism, clock, remember_configs=False)


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite runs the same on GitHub Actions, where `bosun lint` would print `::error`."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The shuffled order's seed, at the end where a failure is read (the header is quiet)."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        terminalreporter.write_line(f"test order shuffled: re-run it with --randomly-seed={seed}")
