"""The environment, read once at start-up into one frozen `Settings`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import SettingsError

DEFAULT_DATABASE_URL = "sqlite:///bosun.db"
DEFAULT_GITHUB_API_URL = "https://api.github.com"
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
# The command that fixes a missing secret (a placeholder, not a secret).
WEBHOOK_SECRET_FIX = "export BOSUN_WEBHOOK_SECRET=<the App's webhook secret>"  # noqa: S105


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, kw_only=True)
class Settings:
    webhook_secret: Secret | None = None
    database_url: str = DEFAULT_DATABASE_URL
    app_id: str | None = None
    private_key: Secret | None = None
    github_api_url: str = DEFAULT_GITHUB_API_URL
    max_body_bytes: int = MAX_WEBHOOK_BYTES
    log_level: str = "INFO"
    workers: int = 2
    sandbox: str = "bubblewrap"
    sandbox_user: str = "bosun-sandbox"
    workspace_dir: Path = Path("workspaces")
    lease_seconds: float = 60.0
    model_script: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            webhook_secret=_secret(env.get("BOSUN_WEBHOOK_SECRET")),
            database_url=env.get("BOSUN_DATABASE_URL") or DEFAULT_DATABASE_URL,
            app_id=env.get("BOSUN_APP_ID") or None,
            private_key=_private_key(env),
            github_api_url=(env.get("BOSUN_GITHUB_API_URL") or DEFAULT_GITHUB_API_URL).rstrip("/"),
            max_body_bytes=_int(env, "BOSUN_MAX_BODY_BYTES", MAX_WEBHOOK_BYTES),
            log_level=(env.get("BOSUN_LOG_LEVEL") or "INFO").upper(),
            workers=_int(env, "BOSUN_WORKERS", 2),
            sandbox=_choice(env, "BOSUN_SANDBOX", ("bubblewrap", "process")),
            sandbox_user=env.get("BOSUN_SANDBOX_USER") or "bosun-sandbox",
            workspace_dir=Path(env.get("BOSUN_WORKSPACE_DIR") or "workspaces").absolute(),
            lease_seconds=float(_int(env, "BOSUN_LEASE_SECONDS", 60)),
            model_script=Path(env["BOSUN_MODEL_SCRIPT"]) if env.get("BOSUN_MODEL_SCRIPT") else None,
        )

    def require_webhook_secret(self) -> Secret:
        if self.webhook_secret is None:
            raise SettingsError(
                "BOSUN_WEBHOOK_SECRET is not set: Bosun refuses unsigned webhooks, "
                "so it needs the secret configured on the GitHub App",
                fix=WEBHOOK_SECRET_FIX,
            )
        return self.webhook_secret

    @property
    def github_app_configured(self) -> bool:
        return self.app_id is not None and self.private_key is not None


def _secret(value: str | None) -> Secret | None:
    return Secret(value) if value else None


def _private_key(env: Mapping[str, str]) -> Secret | None:
    if env.get("BOSUN_PRIVATE_KEY"):
        # Environments often flatten the PEM onto one line with literal "\n".
        return Secret(env["BOSUN_PRIVATE_KEY"].replace("\\n", "\n"))
    path = env.get("BOSUN_PRIVATE_KEY_FILE")
    if not path:
        return None
    try:
        return Secret(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(
            f"BOSUN_PRIVATE_KEY_FILE={path} cannot be read: {exc.strerror}",
            fix="export BOSUN_PRIVATE_KEY_FILE=<a readable path to the App's .pem key>",
        ) from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(
            f"{name}={raw!r} is not a whole number", fix=f"export {name}={default}"
        ) from exc


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or choices[0]
    if value not in choices:
        raise SettingsError(
            f"{name}={value!r} must be one of {', '.join(choices)}",
            fix=f"export {name}={choices[0]}",
        )
    return value
