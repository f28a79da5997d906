"""Webhook intake: verify, deduplicate, persist before the ack, refuse what is malformed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import DISPATCHER, create_app
from bot.settings import Secret, Settings
from bot.store import NewDelivery, Store
from tests.fakeclock import FakeClock
from tests.signing import SECRET, delivery_headers, encode, sign

EXAMPLES = Path(__file__).parent.parent / "examples" / "events"
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def settings(**overrides: Any) -> Settings:
    return Settings(webhook_secret=Secret(SECRET), **overrides)


@pytest.fixture
async def client(
    store: Store, clock: FakeClock, aiohttp_client: AiohttpClient
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings(max_body_bytes=64 * 1024), clock=clock, store=store)
    yield await aiohttp_client(app)


def labeled_body() -> bytes:
    return (EXAMPLES / "issues.labeled.json").read_bytes()


async def test_a_signed_delivery_is_stored_before_the_ack(
    client: TestClient[Any, Any], store: Store
) -> None:
    """202 means the delivery is already on disk: nothing acknowledged can be lost."""
    body = labeled_body()
    headers = delivery_headers("issues", body, delivery_id="d-1")
    response = await client.post("/webhook", data=body, headers=headers)
    assert response.status == 202
    stored = store.deliveries.get("d-1")
    assert stored is not None
    assert (stored.event, stored.action, stored.body) == ("issues", "labeled", body)
    assert stored.repo_full_name == json.loads(body)["repository"]["full_name"]


@pytest.mark.parametrize(
    "signature_headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": sign(b"other body")},
        {"X-Hub-Signature-256": "garbage"},
        {"X-Hub-Signature-256": sign(b"{}", "wrong-secret")},
    ],
    ids=["missing", "zeros", "other-body", "garbage", "wrong-secret"],
)
async def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(
    client: TestClient[Any, Any], store: Store, signature_headers: dict[str, str]
) -> None:
    """Only GitHub, holding the secret, can put a delivery into Bosun."""
    body = b"{}"
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "d-bad",
        **signature_headers,
    }
    response = await client.post("/webhook", data=body, headers=headers)
    assert response.status == 401
    assert store.deliveries.count() == 0


async def test_a_legacy_sha1_signature_alone_is_refused(
    client: TestClient[Any, Any], store: Store
) -> None:
    """The SHA-1 header is too weak to trust, even when it is correct."""
    import hashlib
    import hmac

    body = labeled_body()
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "d-sha1",
        "X-Hub-Signature": sha1,
    }
    response = await client.post("/webhook", data=body, headers=headers)
    assert response.status == 401
    sha1_in_256 = {**headers, "X-Hub-Signature-256": sha1}
    assert (await client.post("/webhook", data=body, headers=sha1_in_256)).status == 401
    assert store.deliveries.count() == 0


async def test_a_redelivery_is_acknowledged_and_not_stored_again(
    client: TestClient[Any, Any], store: Store
) -> None:
    """GitHub redelivers; the same delivery id answers 200 and nothing is done twice."""
    body = labeled_body()
    headers = delivery_headers("issues", body, delivery_id="d-dup")
    assert (await client.post("/webhook", data=body, headers=headers)).status == 202
    again = await client.post("/webhook", data=body, headers=headers)
    assert again.status == 200
    assert (await again.json())["status"] == "duplicate"
    assert store.deliveries.count() == 1


async def test_concurrent_copies_of_one_delivery_store_one(
    client: TestClient[Any, Any], store: Store
) -> None:
    """Copies racing in the same batch still make exactly one stored delivery."""
    body = labeled_body()
    headers = delivery_headers("issues", body, delivery_id="d-race")
    responses = await asyncio.gather(
        *(client.post("/webhook", data=body, headers=headers) for _ in range(8))
    )
    assert sorted(r.status for r in responses) == [200] * 7 + [202]
    assert store.deliveries.count() == 1


async def test_an_oversized_body_is_refused_without_storing(
    client: TestClient[Any, Any], store: Store
) -> None:
    """Bodies over the cap answer 413, whether or not they announce their length."""
    body = b'{"pad": "' + b"x" * (70 * 1024) + b'"}'
    headers = delivery_headers("issues", body)
    assert (await client.post("/webhook", data=body, headers=headers)).status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = await client.post("/webhook", data=chunks(), headers=headers)
    assert streamed.status == 413
    assert store.deliveries.count() == 0


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b"\xff\xfe"], ids=["broken", "array", "bytes"]
)
async def test_malformed_json_is_a_400(
    client: TestClient[Any, Any], store: Store, body: bytes
) -> None:
    """A correctly signed body that is not a JSON object is refused, and nothing is stored."""
    response = await client.post("/webhook", data=body, headers=delivery_headers("issues", body))
    assert response.status == 400
    assert store.deliveries.count() == 0


async def test_missing_event_headers_and_wrong_content_type(
    client: TestClient[Any, Any], store: Store
) -> None:
    """Deliveries without GitHub's event headers, or form-encoded, are refused clearly."""
    body = b"{}"
    headers = delivery_headers("issues", body)
    no_event = {k: v for k, v in headers.items() if k != "X-GitHub-Event"}
    assert (await client.post("/webhook", data=body, headers=no_event)).status == 400
    no_id = {k: v for k, v in headers.items() if k != "X-GitHub-Delivery"}
    assert (await client.post("/webhook", data=body, headers=no_id)).status == 400
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/webhook", data=body, headers=form)).status == 415
    assert store.deliveries.count() == 0


async def test_unknown_events_are_acknowledged_and_ignored(
    client: TestClient[Any, Any], store: Store
) -> None:
    """An event Bosun does not act on is stored, acknowledged and marked ignored."""
    body = encode({"action": "teleported", "zen": "Keep it logically awesome."})
    headers = delivery_headers("made_up_event", body, delivery_id="d-unknown")
    assert (await client.post("/webhook", data=body, headers=headers)).status == 202
    await client.app[DISPATCHER].drain_once()
    stored = store.deliveries.get("d-unknown")
    assert stored is not None and stored.outcome == "ignored"


async def test_healthz_reports_the_store(client: TestClient[Any, Any]) -> None:
    """Load balancers see a healthy instance only while its store answers."""
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "store": "ok"}


async def test_healthz_is_503_when_the_store_is_down(
    sqlite_store: Store, clock: FakeClock, aiohttp_client: AiohttpClient
) -> None:
    """A dead database makes /healthz fail, so traffic moves elsewhere."""
    client = await aiohttp_client(create_app(settings(), clock=clock, store=sqlite_store))
    sqlite_store.db.engine.dispose()
    Path(str(sqlite_store.db.engine.url.database)).unlink()
    Path(str(sqlite_store.db.engine.url.database)).mkdir()  # a directory cannot be opened as a db
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["store"] == "down"


async def test_deliveries_acknowledged_before_a_crash_are_handled_on_restart(
    store: Store, clock: FakeClock, aiohttp_client: AiohttpClient
) -> None:
    """Handling runs from the stored event, so a crash between ack and handling loses nothing."""
    body = (EXAMPLES / "installation.created.json").read_bytes()
    payload = json.loads(body)
    store.deliveries.insert_many(
        [
            NewDelivery(
                delivery_id="d-before-crash",
                event="installation",
                action="created",
                installation_id=payload["installation"]["id"],
                repo_full_name=None,
                body=body,
            )
        ]
    )
    await aiohttp_client(create_app(settings(), clock=clock, store=store))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stored = store.deliveries.get("d-before-crash")
        if stored is not None and stored.handled_at is not None:
            break
        await asyncio.sleep(0.02)
    assert stored is not None and stored.outcome == "handled"
    assert store.installations.get(payload["installation"]["id"]) is not None
