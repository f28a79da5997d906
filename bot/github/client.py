"""Every call Bosun makes to GitHub, by area, over one transport: `github.issues.get_issue(...)`."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import aiohttp

from bot.core.clock import Clock
from bot.github.checks import Checks
from bot.github.issues import Issues
from bot.github.pulls import Pulls
from bot.github.repos import Repos
from bot.github.transport import DEFAULT_TIMEOUT, Transport
from bot.github.types import AppIdentity
from bot.settings import Secret


class GitHubClient:
    """GitHub as the App's installations see it: repositories, issues, pull requests and
    check runs, each a client of its own over the shared transport."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        base_url: str,
        app_id: str | None,
        private_key: Secret | None,
        clock: Clock,
        requester: str = "bosun",
        max_attempts: int = 4,
        etag_cache: MutableMapping[str, Any] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.transport = Transport(
            session=session,
            base_url=base_url,
            app_id=app_id,
            private_key=private_key,
            clock=clock,
            requester=requester,
            max_attempts=max_attempts,
            etag_cache=etag_cache,
            timeout=timeout,
        )
        self.repos = Repos(self.transport)
        self.issues = Issues(self.transport)
        self.pulls = Pulls(self.transport)
        self.checks = Checks(self.transport)

    async def app_identity(self) -> AppIdentity | None:
        """The App's id and slug, asked of GitHub once; None without App credentials."""
        return await self.transport.app_identity()

    async def installation_token(self, *, installation_id: int) -> str:
        """A token for git over HTTPS, valid for at least five more minutes."""
        return await self.transport.installation_token(installation_id=installation_id)
