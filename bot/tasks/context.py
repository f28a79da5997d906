"""What handlers and the use cases they share receive: store, GitHub, config, clock, delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.config.source import ConfigProvider
from bot.core.clock import Clock
from bot.core.errors import SettingsError
from bot.execution.publication import Publisher
from bot.github.client import GitHubClient
from bot.github.types import Repo
from bot.store import AuditEntry, Store


@dataclass(frozen=True, kw_only=True)
class HandlerContext:
    store: Store
    github: GitHubClient | None
    configs: ConfigProvider | None
    clock: Clock
    delivery_id: str
    publisher: Publisher | None = None
    wake_scheduler: Callable[[], None] = lambda: None

    def entry(
        self,
        action: str,
        *,
        actor: str,
        repo: Repo | None = None,
        config_sha: str | None = None,
        detail: dict[str, Any] | None = None,
        task_id: int | None = None,
    ) -> AuditEntry:
        """An audit record of this delivery: who did what, where, under which config; to be
        written with the change it records."""
        return AuditEntry(
            actor=actor,
            action=action,
            repo_full_name=repo.full_name if repo is not None else None,
            delivery_id=self.delivery_id,
            config_sha=config_sha,
            task_id=task_id,
            detail=detail or {},
        )

    async def audit(
        self,
        action: str,
        *,
        actor: str,
        repo: Repo | None = None,
        config_sha: str | None = None,
        detail: dict[str, Any] | None = None,
        task_id: int | None = None,
    ) -> int:
        """An audit record of this delivery on its own, for what changes no task."""
        entry = self.entry(
            action, actor=actor, repo=repo, config_sha=config_sha, detail=detail, task_id=task_id
        )
        return await asyncio.to_thread(self.store.audit.record, entry)

    async def publish(self, task_id: int | None) -> None:
        """Show on GitHub what the store says the task should show (the reconcile loop
        publishes it later if GitHub fails now)."""
        if task_id is not None and self.publisher is not None:
            await self.publisher.sync(task_id)

    def require_github(self) -> tuple[GitHubClient, ConfigProvider]:
        if self.github is None or self.configs is None:
            raise SettingsError(
                "this event needs the GitHub App: set BOSUN_APP_ID and BOSUN_PRIVATE_KEY"
            )
        return self.github, self.configs
