"""Stored deliveries reach the handlers whatever happens to the database on the way."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from gidgethub import routing, sansio

from bot.intake.dispatcher import EventDispatcher
from bot.store import NewDelivery, Store
from tests.fakeclock import FakeClock


def delivery(delivery_id: str) -> NewDelivery:
    return NewDelivery(
        delivery_id=delivery_id,
        event="issues",
        action="opened",
        installation_id=7,
        repo_full_name="acme/app",
        body=b'{"action": "opened"}',
    )


async def test_the_dispatcher_outlives_a_database_that_goes_away(
    sqlite_store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """The database vanishes while deliveries wait: handling stops, the loop does not, and the
    waiting delivery is handled once the database is back."""
    handled: list[str] = []
    router = routing.Router()

    @router.register("issues", action="opened")
    async def note(event: sansio.Event, _ctx: object) -> None:
        handled.append(event.delivery_id)

    dispatcher = EventDispatcher(
        store=sqlite_store, router=router, make_context=lambda _: None, clock=clock
    )
    path = Path(str(sqlite_store.db.engine.url.database))
    aside = tmp_path / "aside.db"
    sqlite_store.deliveries.insert_many([delivery("d-1")])
    sqlite_store.db.engine.dispose()
    shutil.move(path, aside)
    path.mkdir()  # a directory cannot be opened as a database
    loop = asyncio.create_task(dispatcher.run_forever())
    while not clock.slept:  # the first drain has failed and the loop waits to try again
        await asyncio.sleep(0.01)
    assert handled == [] and not loop.done()

    path.rmdir()
    shutil.move(aside, path)
    sqlite_store.db.engine.dispose()
    dispatcher.wake()
    while not handled:
        await asyncio.sleep(0.01)
    await dispatcher.stop()
    await asyncio.wait_for(loop, timeout=30)
    assert handled == ["d-1"]
    stored = sqlite_store.deliveries.get("d-1")
    assert stored is not None and stored.outcome == "handled"
