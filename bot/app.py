"""The composition root: `create_app` wires intake, handlers and lifecycles into one aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot.clock import Clock
from bot.config.source import ConfigProvider
from bot.delivery_writer import DeliveryWriter
from bot.events import EventDispatcher
from bot.github import GitHubClient
from bot.handlers import router
from bot.handlers.context import HandlerContext
from bot.intake import make_webhook_handler
from bot.settings import Settings
from bot.store import Store, StoredDelivery

STORE = web.AppKey("store", Store)
DISPATCHER = web.AppKey("dispatcher", EventDispatcher)
GITHUB = web.AppKey("github", GitHubClient)


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    store: Store | None = None,
    github: GitHubClient | None = None,
) -> web.Application:
    """Build the service; nothing starts until the app runs (see `cleanup_ctx`)."""
    secret = settings.require_webhook_secret()
    owned_store = store is None
    store = store or Store.connect(settings.database_url, clock=clock)
    writer = DeliveryWriter(store.insert_deliveries)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[STORE] = store

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(store.migrate)
        async with _github_client(settings, clock, github) as client:
            if client is not None:
                app[GITHUB] = client
            dispatcher = _dispatcher(store, client, clock)
            app[DISPATCHER] = dispatcher
            await writer.start()
            draining = asyncio.create_task(dispatcher.run_forever(), name="event-dispatcher")
            yield
            await writer.stop()
            await dispatcher.stop()
            await draining
        if owned_store:
            store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(
        "/webhook",
        make_webhook_handler(
            secret=secret,
            writer=writer,
            max_body_bytes=settings.max_body_bytes,
            on_stored=lambda: app[DISPATCHER].wake(),
        ),
    )
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    reachable = await asyncio.to_thread(request.app[STORE].ping)
    body = {"status": "ok" if reachable else "degraded", "store": "ok" if reachable else "down"}
    return web.json_response(body, status=200 if reachable else 503)


def _dispatcher(store: Store, github: GitHubClient | None, clock: Clock) -> EventDispatcher:
    configs = ConfigProvider(github) if github is not None else None

    def make_context(delivery: StoredDelivery) -> HandlerContext:
        return HandlerContext(
            store=store,
            github=github,
            configs=configs,
            clock=clock,
            delivery_id=delivery.delivery_id,
        )

    return EventDispatcher(store=store, router=router, make_context=make_context, clock=clock)


@contextlib.asynccontextmanager
async def _github_client(
    settings: Settings, clock: Clock, given: GitHubClient | None
) -> AsyncIterator[GitHubClient | None]:
    if given is not None or not settings.github_app_configured:
        yield given
        return
    async with aiohttp.ClientSession() as session:
        yield GitHubClient(
            session=session,
            base_url=settings.github_api_url,
            app_id=settings.app_id,
            private_key=settings.private_key,
            clock=clock,
        )
