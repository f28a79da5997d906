"""GitHub in tests: the fake served over HTTP, clients on it, and Prism checking the contract."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest

from bot.demo.run import app_key_pair as new_app_key
from bot.github.client import GitHubClient
from bot.settings import Secret
from tests.contract.prism import PrismProxy, PrismUnavailable
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub

APP_ID = "4242"


@pytest.fixture(scope="session")
def github_app_key() -> tuple[str, str]:
    """The key pair of the App the fake GitHub knows."""
    return new_app_key()


@pytest.fixture(scope="session")
def fake_github_server(github_app_key: tuple[str, str]) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(app_id=APP_ID, public_key=github_app_key[1])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_github(fake_github_server: FakeGitHub) -> Iterator[FakeGitHub]:
    """The session's fake GitHub, emptied for this test."""
    fake_github_server.reset()
    yield fake_github_server
    fake_github_server.reset()


@pytest.fixture
async def github_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _client(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, private_key: str
) -> GitHubClient:
    return GitHubClient(
        session=session,
        base_url=base_url,
        app_id=APP_ID,
        private_key=Secret(private_key),
        clock=clock,
        etag_cache={},
    )


@pytest.fixture
def github_client(
    fake_github: FakeGitHub,
    github_session: aiohttp.ClientSession,
    clock: FakeClock,
    github_app_key: tuple[str, str],
) -> GitHubClient:
    """A GitHubClient talking straight to the fake, which keeps time by the test's clock."""
    fake_github.now = clock.now
    return _client(github_session, fake_github.url, clock, github_app_key[0])


@pytest.fixture(scope="session")
def prism_proxy(
    fake_github_server: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrismProxy]:
    """Prism, started once, checking every request and answer between Bosun and the fake."""
    proxy = PrismProxy(
        port=_free_port(),
        upstream=fake_github_server.url,
        workdir=tmp_path_factory.mktemp("prism"),
    )
    problem = _started(proxy)
    if problem:
        pytest.fail(problem, pytrace=False)
    yield proxy
    proxy.stop()


@pytest.fixture
async def prism_session(prism_proxy: PrismProxy) -> AsyncIterator[aiohttp.ClientSession]:
    """A session that keeps the rules named in Prism's refusals, for `prism_violations`."""
    async with aiohttp.ClientSession(trace_configs=[prism_proxy.trace_config()]) as session:
        yield session


@pytest.fixture
def github_via_prism(
    prism_proxy: PrismProxy,
    prism_session: aiohttp.ClientSession,
    fake_github: FakeGitHub,
    clock: FakeClock,
    github_app_key: tuple[str, str],
) -> GitHubClient:
    """A GitHubClient whose every call passes through Prism on its way to the fake."""
    fake_github.now = clock.now
    fake_github.public_url = prism_proxy.url
    return _client(prism_session, prism_proxy.url, clock, github_app_key[0])


@pytest.fixture
def prism_violations(prism_proxy: PrismProxy) -> Callable[[], list[str]]:
    """Call it for every break of GitHub's description since the test began; [] is clean."""
    since = prism_proxy.mark()
    return lambda: prism_proxy.violations(since=since)


def _started(proxy: PrismProxy) -> str | None:
    """Start Prism; a missing harness is a failure with the command to run, never a skip."""
    try:
        proxy.start()
    except PrismUnavailable as exc:
        return str(exc)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
