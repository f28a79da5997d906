"""The composition root: `create_app` wires intake, handlers and lifecycles into one aiohttp app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot.config.source import ConfigProvider
from bot.core.clock import Clock
from bot.execution.publication import Publisher
from bot.github.client import GitHubClient
from bot.handlers import router
from bot.intake.dispatcher import EventDispatcher
from bot.intake.http import make_webhook_handler
from bot.intake.writer import DeliveryWriter
from bot.scheduling.loop import Scheduler, SchedulerConfig
from bot.settings import Settings
from bot.store import Store, StoredDelivery
from bot.tasks.context import HandlerContext
from bot.web.health import health_handler

STORE = web.AppKey("store", Store)
SCHEDULER = web.AppKey("scheduler", Scheduler)
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
    writer = DeliveryWriter(store.deliveries.insert_many)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[STORE] = store

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(store.migrate)
        async with _github_client(settings, clock, github) as client:
            configs = ConfigProvider(client, good=store.configs) if client is not None else None
            publisher = None
            scheduler = None
            if client is not None and configs is not None:
                app[GITHUB] = client
                publisher = Publisher(github=client, store=store, clock=clock)
                scheduler = await _scheduler(settings, store, client, configs, clock, publisher)
                app[SCHEDULER] = scheduler
            dispatcher = _dispatcher(store, client, configs, clock, scheduler, publisher)
            app[DISPATCHER] = dispatcher
            await writer.start()
            background = [asyncio.create_task(dispatcher.run_forever(), name="event-dispatcher")]
            if scheduler is not None:
                background.append(asyncio.create_task(scheduler.run_forever(), name="scheduler"))
            yield
            await writer.stop()
            await dispatcher.stop()
            if scheduler is not None:
                await scheduler.stop()
            await asyncio.gather(*background)
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
    app.router.add_get("/healthz", health_handler(store.ping))
    return app


def _dispatcher(
    store: Store,
    github: GitHubClient | None,
    configs: ConfigProvider | None,
    clock: Clock,
    scheduler: Scheduler | None,
    publisher: Publisher | None,
) -> EventDispatcher:
    def make_context(delivery: StoredDelivery) -> HandlerContext:
        return HandlerContext(
            store=store,
            github=github,
            configs=configs,
            clock=clock,
            delivery_id=delivery.delivery_id,
            publisher=publisher,
            wake_scheduler=scheduler.wake if scheduler is not None else lambda: None,
        )

    return EventDispatcher(store=store, router=router, make_context=make_context, clock=clock)


async def _scheduler(
    settings: Settings,
    store: Store,
    github: GitHubClient,
    configs: ConfigProvider,
    clock: Clock,
    publisher: Publisher,
) -> Scheduler:
    """The scheduler and its worker; the model and sandbox libraries load only here."""
    from bot.execution.build import build_worker

    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    worker = await asyncio.to_thread(
        build_worker,
        settings,
        store=store,
        github=github,
        configs=configs,
        clock=clock,
        holder=holder,
        publisher=publisher,
    )
    config = SchedulerConfig(
        slots=settings.workers, holder=holder, lease_ttl=settings.lease_seconds
    )
    return Scheduler(
        store=store,
        run_task=worker.run,
        clock=clock,
        config=config,
        on_worker_lost=worker.recover_lost,
        sync_publications=publisher.sync_due,
    )


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
