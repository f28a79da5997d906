"""`GET /healthz`: 200 while the store answers, 503 otherwise, for load balancers and probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

Ping = Callable[[], bool]


def health_handler(ping: Ping) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler answering from `ping` (the store's), run off the event loop."""

    async def healthz(request: web.Request) -> web.Response:
        reachable = await asyncio.to_thread(ping)
        body = {"status": "ok" if reachable else "degraded", "store": "ok" if reachable else "down"}
        return web.json_response(body, status=200 if reachable else 503)

    return healthz
