"""What handlers and the use cases they share receive: store, GitHub, config, clock, delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.config.source import ConfigProvider
from bot.core.clock import Clock
from bot.core.errors import SettingsError
from bot.github.client import GitHubClient, Repo
from bot.store import Store


@dataclass(frozen=True, kw_only=True)
class HandlerContext:
    store: Store
    github: GitHubClient | None
    configs: ConfigProvider | None
    clock: Clock
    delivery_id: str
    wake_scheduler: Callable[[], None] = lambda: None

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
        """An audit record of this delivery: who did what, where, under which config."""
        return await asyncio.to_thread(
            self.store.audit,
            actor=actor,
            action=action,
            repo_full_name=repo.full_name if repo is not None else None,
            delivery_id=self.delivery_id,
            config_sha=config_sha,
            task_id=task_id,
            detail=detail or {},
        )

    def require_github(self) -> tuple[GitHubClient, ConfigProvider]:
        if self.github is None or self.configs is None:
            raise SettingsError(
                "this event needs the GitHub App: set BOSUN_APP_ID and BOSUN_PRIVATE_KEY"
            )
        return self.github, self.configs
