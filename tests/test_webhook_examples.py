"""Every recorded GitHub webhook example, correctly signed, is accepted and handled, no crash."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import Session, select

from bot.app import DISPATCHER, create_app
from bot.github.client import GitHubClient
from bot.settings import Secret, Settings
from bot.store import Store
from bot.store.tables import Delivery
from tests.events import example_config
from tests.fakeclock import FakeClock
from tests.fakegithub import FakeGitHub
from tests.signing import SECRET, delivery_headers
from tests.webhook_examples import Example, examples

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def seed(fake: FakeGitHub, every: list[Example]) -> None:
    """Give the fake every repository, branch and issue the examples speak of."""
    seen: set[str] = set()
    for example in every:
        repository = example.payload.get("repository")
        if not isinstance(repository, dict):
            continue
        owner, name = repository["full_name"].split("/")
        installation = (example.payload.get("installation") or {}).get("id", 1)
        if repository["full_name"] not in seen:
            seen.add(repository["full_name"])
            fake.add_repo(owner, name, installation_id=installation, files=example_config())
            fake.add_branch(owner, name, "master")
        issue = example.payload.get("issue")
        if isinstance(issue, dict):
            fake.add_issue(owner, name, number=issue["number"])


@pytest.mark.parametrize("as_app", [False, True], ids=["as-recorded", "with-installation"])
async def test_every_example_is_acknowledged_and_no_handler_crashes(
    as_app: bool,
    sqlite_store: Store,
    clock: FakeClock,
    github_via_prism: GitHubClient,
    prism_violations: Callable[[], list[str]],
    fake_github: FakeGitHub,
    aiohttp_client: AiohttpClient,
) -> None:
    """No real payload GitHub sends makes intake answer 5xx or a handler raise a bug."""
    every = list(examples())
    assert len(every) > 300
    seed(fake_github, every)
    app = create_app(
        Settings(webhook_secret=Secret(SECRET)),
        clock=clock,
        store=sqlite_store,
        github=github_via_prism,
    )
    client = await aiohttp_client(app)
    statuses = {}
    for example in every:
        payload = example.payload
        if as_app and "installation" not in payload:  # an App's deliveries always name it
            payload = {**payload, "installation": {"id": 1, "node_id": "MDIzOkludGVncmF0aW9u"}}
        body = json.dumps(payload).encode()
        headers = delivery_headers(example.event, body, delivery_id=example.delivery_id)
        response = await client.post("/webhook", data=body, headers=headers)
        statuses[example.delivery_id] = response.status
    assert {status for status in statuses.values()} <= {200, 202}, statuses
    await app[DISPATCHER].drain_once()
    with Session(sqlite_store.db.engine) as session:
        rows = session.exec(select(Delivery)).all()
    assert len(rows) == len({e.delivery_id for e in every})
    crashed = {row.delivery_id: row.error for row in rows if row.outcome == "error"}
    assert crashed == {}
    assert all(row.handled_at is not None for row in rows)
    outcomes = {row.outcome for row in rows}
    assert "handled" in outcomes and "ignored" in outcomes
    assert prism_violations() == []
