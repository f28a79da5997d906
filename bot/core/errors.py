"""The exception hierarchy: surprises only; expected outcomes are values.

BosunError
├── SettingsError            the environment does not describe a runnable service (fix)
│   └── SandboxUnavailable       the chosen sandbox cannot isolate agents on this machine
├── ConfigError              a `.bosun/` file cannot be used (path, line, col)
├── StoreError               the database refused or is unreachable
└── GitHubError              GitHub answered with an error (status_code)
    ├── GitHubTransientError     5xx or a network failure: worth retrying
    └── GitHubRateLimited        primary or secondary rate limit (retry_after seconds)
"""

from __future__ import annotations


class BosunError(Exception):
    """Root of every exception Bosun raises on purpose.

    `fix`, when known, is the command that fixes it; the CLI prints both on one line.
    """

    fix: str | None = None


class SettingsError(BosunError):
    """The environment is missing or has a malformed setting."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class SandboxUnavailable(SettingsError):
    """The sandbox chosen cannot isolate agents here: a tool, the user or namespaces missing."""


class ConfigError(BosunError):
    """A `.bosun/` file cannot be parsed or validated."""

    def __init__(self, message: str, *, path: str, line: int = 0, col: int = 0) -> None:
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.message = message
        self.path = path
        self.line = line
        self.col = col


class StoreError(BosunError):
    """The database is unreachable or refused a write."""


class IllegalTransition(BosunError):
    """A task state change that `bot.core.task_states.TRANSITIONS` does not allow."""


class PayloadError(BosunError):
    """A webhook payload lacks a field its event kind should carry."""


class GitHubError(BosunError):
    """GitHub answered with an error status."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(f"GitHub {status_code}: {message}")
        self.status_code = status_code


class GitHubTransientError(GitHubError):
    """A 5xx answer or a failed connection: the same request may succeed later."""


class GitHubRateLimited(GitHubError):
    """A primary or secondary rate limit; `retry_after` is seconds to wait."""

    def __init__(self, message: str, *, status_code: int, retry_after: float) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
