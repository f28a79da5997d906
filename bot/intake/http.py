"""`POST /webhook`: cap the body, verify the signature, skip duplicates, persist, answer 202."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web
from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event

from bot.core.errors import StoreError
from bot.intake.writer import DeliveryWriter
from bot.settings import Secret
from bot.store import NewDelivery

log = structlog.get_logger("bosun.intake")

SIGNATURE_PREFIX = "sha256="
MAX_HEADER_CHARS = 64


def problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def make_webhook_handler(
    *,
    secret: Secret,
    writer: DeliveryWriter,
    max_body_bytes: int,
    on_stored: Callable[[], None],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Build the intake handler; `on_stored` wakes the event dispatcher after a new delivery."""
    key = secret.reveal()

    async def receive_webhook(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > max_body_bytes:
            return problem(413, f"body larger than {max_body_bytes} bytes")
        try:
            body = await request.read()  # bounded by the app's client_max_size
        except web.HTTPRequestEntityTooLarge:
            return problem(413, f"body larger than {max_body_bytes} bytes")
        rejection = _verify(request, body, key)
        if rejection is not None:
            return rejection
        parsed = _parse(request, body)
        if isinstance(parsed, web.Response):
            return parsed
        try:
            is_new = await writer.submit(parsed)
        except StoreError:
            log.exception("delivery not stored", delivery_id=parsed.delivery_id)
            return problem(503, "store unavailable; GitHub will let you redeliver")
        if not is_new:
            return web.json_response({"status": "duplicate"}, status=200)
        on_stored()
        return web.json_response({"status": "accepted"}, status=202)

    return receive_webhook


def _verify(request: web.Request, body: bytes, key: str) -> web.Response | None:
    # Only the SHA-256 header counts: the SHA-1 one (X-Hub-Signature) is legacy and
    # gidgethub would accept it, so a delivery carrying only that is refused here.
    signature = request.headers.get("X-Hub-Signature-256", "")
    if not signature.startswith(SIGNATURE_PREFIX):
        return problem(401, "missing or malformed X-Hub-Signature-256")
    try:
        validate_event(body, signature=signature, secret=key)
    except ValidationFailure:
        return problem(401, "signature does not match")
    return None


def _parse(request: web.Request, body: bytes) -> NewDelivery | web.Response:
    event = request.headers.get("X-GitHub-Event", "")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    if not _header_ok(event) or not _header_ok(delivery_id):
        return problem(400, "missing or malformed X-GitHub-Event / X-GitHub-Delivery")
    if request.content_type != "application/json":
        return problem(415, "content type must be application/json")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return problem(400, "body is not valid JSON")
    if not isinstance(payload, dict):
        return problem(400, "body must be a JSON object")
    return NewDelivery(
        delivery_id=delivery_id,
        event=event,
        action=_short_str(payload.get("action")),
        installation_id=_installation_id(payload),
        repo_full_name=_repo_full_name(payload),
        body=body,
    )


def _header_ok(value: str) -> bool:
    return 0 < len(value) <= MAX_HEADER_CHARS and value.isprintable()


def _short_str(value: Any) -> str | None:
    return value[:MAX_HEADER_CHARS] if isinstance(value, str) else None


def _installation_id(payload: dict[str, Any]) -> int | None:
    installation = payload.get("installation")
    if isinstance(installation, dict) and isinstance(installation.get("id"), int):
        return int(installation["id"])
    return None


def _repo_full_name(payload: dict[str, Any]) -> str | None:
    repository = payload.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
        return str(repository["full_name"])[:256]
    return None
