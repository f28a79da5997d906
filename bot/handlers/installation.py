"""`installation` and `installation_repositories`: remember where Bosun is installed."""

from __future__ import annotations

import asyncio
from typing import Any

from gidgethub import routing, sansio

from bot.core.errors import PayloadError
from bot.tasks.context import HandlerContext

router = routing.Router()

STATUS_BY_ACTION = {
    "created": "active",
    "new_permissions_accepted": "active",
    "unsuspend": "active",
    "suspend": "suspended",
    "deleted": "deleted",
}


def _names(repositories: Any) -> list[str]:
    if not isinstance(repositories, list):
        return []
    return [r["full_name"] for r in repositories if isinstance(r, dict) and "full_name" in r]


def _installation(data: dict[str, Any]) -> dict[str, Any]:
    installation = data.get("installation")
    if not isinstance(installation, dict) or not isinstance(installation.get("id"), int):
        raise PayloadError("installation event without an installation id")
    return installation


@router.register("installation")
async def record_installation(event: sansio.Event, ctx: HandlerContext) -> None:
    installation = _installation(event.data)
    action = event.data.get("action", "")
    status = STATUS_BY_ACTION.get(action)
    if status is None:
        return
    account = installation.get("account") or {}
    await asyncio.to_thread(
        ctx.store.installations.record,
        installation_id=installation["id"],
        account_login=account.get("login", ""),
        account_type=account.get("type", ""),
        status=status,
    )
    if action == "created":
        await asyncio.to_thread(
            ctx.store.installations.set_repositories,
            installation["id"],
            added=_names(event.data.get("repositories")),
            removed=[],
        )
    await _audit(ctx, event, f"installation.{action}", {"account": account.get("login", "")})


@router.register("installation_repositories")
async def record_installation_repositories(event: sansio.Event, ctx: HandlerContext) -> None:
    installation_id = _installation(event.data)["id"]
    added = _names(event.data.get("repositories_added"))
    removed = _names(event.data.get("repositories_removed"))
    await asyncio.to_thread(
        ctx.store.installations.set_repositories, installation_id, added=added, removed=removed
    )
    await _audit(
        ctx,
        event,
        f"installation_repositories.{event.data.get('action', '')}",
        {"added": added, "removed": removed},
    )


async def _audit(
    ctx: HandlerContext, event: sansio.Event, action: str, detail: dict[str, Any]
) -> None:
    await ctx.audit(
        action,
        actor=(event.data.get("sender") or {}).get("login", "github"),
        detail={"installation_id": _installation(event.data)["id"], **detail},
    )
