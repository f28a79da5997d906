"""`bosun serve`: logging set up once, then the app on one port until interrupted."""

from __future__ import annotations

import logging
import sys

import structlog
from aiohttp import web

from bot.app import create_app
from bot.core.clock import SystemClock
from bot.settings import Settings


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def run_server(settings: Settings, *, host: str, port: int) -> None:
    configure_logging(settings.log_level)
    app = create_app(settings, clock=SystemClock())
    log = structlog.get_logger("bosun.serve")
    log.info(
        "starting",
        host=host,
        port=port,
        database=settings.database_url.split("@")[-1],
        github_app=settings.github_app_configured,
    )
    # Access logs off: one line per delivery costs more than the delivery itself.
    web.run_app(app, host=host, port=port, access_log=None, print=None)
