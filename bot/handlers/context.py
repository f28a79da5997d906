"""What every handler receives: the store, GitHub, config, the clock and the delivery at hand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.clock import Clock
from bot.config.source import ConfigProvider
from bot.errors import SettingsError
from bot.github import GitHubClient
from bot.store import Store


@dataclass(frozen=True, kw_only=True)
class HandlerContext:
    store: Store
    github: GitHubClient | None
    configs: ConfigProvider | None
    clock: Clock
    delivery_id: str
    wake_scheduler: Callable[[], None] = lambda: None

    def require_github(self) -> tuple[GitHubClient, ConfigProvider]:
        if self.github is None or self.configs is None:
            raise SettingsError(
                "this event needs the GitHub App: set BOSUN_APP_ID and BOSUN_PRIVATE_KEY"
            )
        return self.github, self.configs
