"""`bosun doctor`: what this machine lacks for `bosun serve`, one check a line, each with its fix.

Each check is a plain function that returns `Check` values; what it looks at (the environment,
how to find a tool, which models are priced) comes in as arguments, so tests drive it
directly. `run_checks` feeds them this machine. Heavy libraries load inside the checks that
need them; litellm, which takes seconds, only in the model checks, which run last.
`require_sandbox` and `require_git` are the same findings as errors, for `bosun demo` and
`bosun serve` to refuse with before they start anything.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.errors import SandboxUnavailable, SettingsError
from bot.settings import DEFAULT_DATABASE_URL, WEBHOOK_SECRET_FIX, Settings
from sandbox.backends.base import SandboxError
from sandbox.backends.bubblewrap import BubblewrapBackend
from sandbox.setup import (
    SandboxProblem,
    Which,
    ensure_sandbox_user,
    find_tool,
    install_command,
    missing_tools,
    sandbox_problems,
    user_exists,
    useradd_argv,
)

NODE_MAJOR = 20
DB_TIMEOUT_S = 3
# Who the smoke test runs as, as root, while the sandbox user does not exist yet.
STAND_IN_USER = "nobody"
KEY_FIX = "export BOSUN_PRIVATE_KEY_FILE=<the .pem file the App's settings page generates>"


@dataclass(frozen=True)
class Check:
    """One finding. `needed`: `bosun serve` needs it (missing → exit 1); else it is a note."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    needed: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if self.needed else "note"

    @property
    def blocking(self) -> bool:
        return self.needed and not self.ok

    def line(self) -> str:
        text = f"{self.status:<8}{self.name}: {self.detail}"
        return f"{text} — fix: {self.fix}" if self.fix and not self.ok else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "ok": self.ok,
            "needed": self.needed,
            "detail": self.detail,
            "fix": self.fix,
        }


# ---- the environment --------------------------------------------------------------------


def check_settings(env: Mapping[str, str]) -> Check:
    """Whether `bosun serve` can read its settings from `env` at all."""
    try:
        Settings.from_env(env)
    except SettingsError as exc:
        return Check("settings", False, str(exc), fix=exc.fix)
    return Check("settings", True, "the BOSUN_* environment reads as valid settings")


def check_webhook_secret(value: str | None) -> Check:
    if not value:
        return Check(
            "webhook secret",
            False,
            "BOSUN_WEBHOOK_SECRET is not set; bosun serve refuses to start without it",
            fix=WEBHOOK_SECRET_FIX,
        )
    return Check("webhook secret", True, "BOSUN_WEBHOOK_SECRET is set")


def check_app_id(value: str | None) -> Check:
    fix = "export BOSUN_APP_ID=<the App ID on the GitHub App's settings page>"
    if not value:
        return Check(
            "GitHub App id",
            False,
            "BOSUN_APP_ID is not set; without the App, Bosun stores deliveries and acts on none",
            fix=fix,
        )
    if not value.isdigit():
        return Check("GitHub App id", False, f"BOSUN_APP_ID={value!r} is not a number", fix=fix)
    return Check("GitHub App id", True, f"BOSUN_APP_ID is {value}")


def check_private_key(env: Mapping[str, str]) -> Check:
    """The App's private key, from BOSUN_PRIVATE_KEY or BOSUN_PRIVATE_KEY_FILE: an RSA PEM key."""
    name = "GitHub App key"
    if env.get("BOSUN_PRIVATE_KEY"):
        source, pem = "BOSUN_PRIVATE_KEY", env["BOSUN_PRIVATE_KEY"].replace("\\n", "\n")
    elif env.get("BOSUN_PRIVATE_KEY_FILE"):
        source = f"BOSUN_PRIVATE_KEY_FILE={env['BOSUN_PRIVATE_KEY_FILE']}"
        try:
            pem = Path(env["BOSUN_PRIVATE_KEY_FILE"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not text"
            return Check(name, False, f"{source} cannot be read: {reason}", fix=KEY_FIX)
    else:
        return Check(
            name, False, "neither BOSUN_PRIVATE_KEY nor BOSUN_PRIVATE_KEY_FILE is set", fix=KEY_FIX
        )
    return _pem_check(name, source, pem)


def _pem_check(name: str, source: str, pem: str) -> Check:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        return Check(
            name, False, f"{source} is encrypted; Bosun needs the key as GitHub gives it", KEY_FIX
        )
    except (ValueError, UnsupportedAlgorithm):
        return Check(name, False, f"{source} is not a PEM private key", fix=KEY_FIX)
    if not isinstance(key, RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "")
        return Check(name, False, f"{source} is a {kind} key; App keys are RSA", fix=KEY_FIX)
    return Check(name, True, f"{source} is an RSA {key.key_size}-bit PEM key")


# ---- the store --------------------------------------------------------------------------


def check_database(url: str, *, timeout_s: int = DB_TIMEOUT_S) -> Check:
    """The store at `url`: reachable, and migrated or migratable by `bosun serve` at start."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from bot.store.engine import normalize_url

    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        return Check(
            "database",
            False,
            "BOSUN_DATABASE_URL is not a database URL",
            fix=f"export BOSUN_DATABASE_URL={DEFAULT_DATABASE_URL}",
        )
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _check_sqlite(parsed.database or "")
    if backend == "postgresql":
        return _check_postgres(parsed.render_as_string(hide_password=False), timeout_s)
    return Check(
        "database",
        False,
        f"{backend} is not supported; Bosun stores in SQLite or PostgreSQL",
        fix=f"export BOSUN_DATABASE_URL={DEFAULT_DATABASE_URL}",
    )


def _check_sqlite(database: str) -> Check:
    if database in ("", ":memory:"):
        return Check("database", True, "SQLite in memory: nothing survives a restart")
    path = Path(database).absolute()
    label = f"SQLite {path}"
    elsewhere = "export BOSUN_DATABASE_URL=sqlite:///<a path this user may write>"
    if not path.parent.is_dir():
        return Check("database", False, f"{label}: no such directory", f"mkdir -p {path.parent}")
    # WAL mode writes files beside the database: the directory must be writable too.
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return Check("database", False, f"{label}: its directory is not writable", elsewhere)
    if not path.exists():
        return Check("database", True, f"{label} does not exist yet; bosun serve creates it")
    if not os.access(path, os.R_OK | os.W_OK):
        return Check("database", False, f"{label} is not writable by this user", elsewhere)
    from sqlalchemy import create_engine

    uri = f"{path.as_uri()}?mode=ro"
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    return _migration_check(engine, label)


def _check_postgres(url: str, timeout_s: int) -> Check:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    label = f"PostgreSQL {parsed.render_as_string(hide_password=True)}"
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": timeout_s})
    return _migration_check(
        engine,
        label,
        unreachable_fix=f"start PostgreSQL on {where} (pg_isready -h {parsed.host or 'localhost'} "
        f"-p {parsed.port or 5432}), or unset BOSUN_DATABASE_URL for the embedded SQLite",
    )


def _migration_check(engine: Any, label: str, *, unreachable_fix: str | None = None) -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.migrate import alembic_config

    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
            may_create = connection.dialect.name != "postgresql" or bool(
                connection.execute(
                    text("SELECT has_schema_privilege(current_schema(), 'CREATE')")
                ).scalar()
            )
    except SQLAlchemyError as exc:
        reason = _first_line(str(getattr(exc, "orig", None) or exc))
        return Check("database", False, f"{label} is unreachable: {reason}", unreachable_fix)
    finally:
        engine.dispose()
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    revisions = [script.revision for script in scripts.walk_revisions()]  # newest first
    unknown = [revision for revision in current if revision not in revisions]
    if unknown:
        return Check(
            "database",
            False,
            f"{label} is at revision {', '.join(unknown)}, which this Bosun does not know "
            "(a newer Bosun migrated it)",
            fix="install the Bosun that migrated it: pip install -U bosun",
        )
    pending = min((revisions.index(revision) for revision in current), default=len(revisions))
    if pending == 0:
        return Check("database", True, f"{label} is reachable and migrated ({revisions[0]})")
    if not may_create:
        return Check(
            "database",
            False,
            f"{label}: {pending} migration(s) pending and this user may not create tables",
            fix="GRANT CREATE ON SCHEMA public TO <the user in BOSUN_DATABASE_URL>",
        )
    return Check(
        "database",
        True,
        f"{label} is reachable; bosun serve applies its {pending} pending migration(s) at start",
    )


# ---- the sandbox and host tools ----------------------------------------------------------


def check_bubblewrap(sandbox: str, sandbox_user: str, *, which: Which | None = None) -> Check:
    """bubblewrap installed and able to start an isolated sandbox as the user runs will use."""
    if sandbox != "bubblewrap":
        return Check(
            "bubblewrap",
            False,
            f"BOSUN_SANDBOX={sandbox}: agents run WITHOUT isolation",
            fix="unset BOSUN_SANDBOX",
            needed=False,
        )
    who = sandbox_user
    if os.geteuid() == 0 and not user_exists(who) and user_exists(STAND_IN_USER):
        who = STAND_IN_USER  # the same unprivileged launch, before serve creates its user
    problems = sandbox_problems(BubblewrapBackend(sandbox_user=who), which=which)
    if problems:
        return Check("bubblewrap", False, _whats(problems), fix=_fixes(problems))
    bwrap = (which or find_tool)("bwrap")
    as_whom = f" as {who}" if os.geteuid() == 0 else ""
    return Check("bubblewrap", True, f"{bwrap} starts an isolated sandbox{as_whom}")


def check_sandbox_user(sandbox: str, sandbox_user: str) -> Check:
    """As root, bubblewrap runs as an unprivileged user (it leaves root's capabilities inside)."""
    name = "sandbox user"
    if sandbox != "bubblewrap":
        return Check(name, True, f"not used with BOSUN_SANDBOX={sandbox}")
    if os.geteuid() != 0:
        return Check(name, True, "not needed: Bosun runs unprivileged, and so does bubblewrap")
    if user_exists(sandbox_user):
        return Check(name, True, f"{sandbox_user} exists; bubblewrap runs as it, not as root")
    return Check(
        name,
        False,
        f"{sandbox_user} does not exist; bosun serve and bosun demo create it at start as root",
        fix=" ".join(useradd_argv(sandbox_user)),
        needed=False,
    )


def check_git(*, which: Callable[[str], str | None] = shutil.which) -> Check:
    git = which("git")
    if git is None:
        return Check("git", False, "git is not installed", fix=install_command("git"))
    return Check("git", True, _version([git, "--version"]) or git)


def check_node(*, which: Callable[[str], str | None] = shutil.which) -> Check:
    """Node.js runs Prism for the contract tests; Bosun itself never needs it."""
    fix = install_command("nodejs npm")
    node = which("node")
    if node is None:
        return Check("Node.js", False, "not installed; only the tests need it", fix, needed=False)
    version = _version([node, "--version"]) or "?"
    found = re.match(r"v?(\d+)", version)
    if found is None or int(found.group(1)) < NODE_MAJOR:
        detail = f"{version}; the tests need {NODE_MAJOR} or later"
        return Check("Node.js", False, detail, fix=fix, needed=False)
    return Check("Node.js", True, f"{version} (for the contract tests only)", needed=False)


# ---- models -----------------------------------------------------------------------------


def default_models() -> list[str]:
    """Every model the shipped default policy routes to, in tier order, once each."""
    from bot.config.load import default_policy

    tiers = default_policy().models.tiers.values()
    return list(dict.fromkeys(model for tier in tiers for model in tier))


def check_model_keys(
    models: Sequence[str],
    *,
    provider_of: Callable[[str], str | None],
    missing_keys: Callable[[str], Sequence[str]],
    scripted: bool = False,
) -> list[Check]:
    """One check per provider the models route to: are its keys in the environment?"""
    by_provider: dict[str, list[str]] = {}
    checks = []
    for model in models:
        provider = provider_of(model)
        if provider is None:
            checks.append(
                Check(
                    f"model {model}",
                    False,
                    "litellm knows no provider for it, so no call to it can be made",
                    fix="route the default policy's models.tiers to models litellm knows",
                )
            )
        else:
            by_provider.setdefault(provider, []).append(model)
    for provider, names in by_provider.items():
        keys = sorted({key for model in names for key in missing_keys(model)})
        routed = ", ".join(names)
        if not keys:
            checks.append(Check(f"{provider} key", True, f"set (for {routed})"))
            continue
        detail = f"{' and '.join(keys)} not set; the default policy routes {routed} to it"
        if scripted:
            detail += " (BOSUN_MODEL_SCRIPT is set: a scripted model answers instead)"
        fix = " ".join(f"export {key}=..." for key in keys)
        checks.append(Check(f"{provider} key", False, detail, fix=fix, needed=not scripted))
    return checks


def check_prices(models: Sequence[str], *, priced: Callable[[str], bool]) -> Check:
    """Every model must be in litellm's bundled price map: an unpriced call is never free."""
    unpriced = [model for model in models if not priced(model)]
    if unpriced:
        return Check(
            "prices",
            False,
            f"not in litellm's bundled price map: {', '.join(unpriced)}; "
            "their calls cannot be held to a budget",
            fix="route the default policy's models.tiers to priced models",
        )
    return Check("prices", True, f"all {len(models)} models have a price in litellm's map")


def _provider_of(model: str) -> str | None:
    from bot.llm.client import load_litellm

    try:
        return str(load_litellm().get_llm_provider(model)[1])
    except Exception:  # litellm raises its BadRequestError for a model it cannot place
        return None


def _missing_keys(model: str) -> list[str]:
    from bot.llm.client import load_litellm

    found = load_litellm().validate_environment(model)
    return [str(key) for key in found.get("missing_keys", [])]


# ---- the whole machine ------------------------------------------------------------------


def run_checks(env: Mapping[str, str]) -> Iterator[Check]:
    """Every check against this machine and `env`, quick ones first, the model checks last."""
    try:
        settings = Settings.from_env(env)
    except SettingsError:
        settings = Settings()
    yield check_settings(env)
    yield check_webhook_secret(env.get("BOSUN_WEBHOOK_SECRET"))
    yield check_app_id(env.get("BOSUN_APP_ID"))
    yield check_private_key(env)
    yield check_database(settings.database_url)
    yield check_bubblewrap(settings.sandbox, settings.sandbox_user)
    yield check_sandbox_user(settings.sandbox, settings.sandbox_user)
    yield check_git()
    yield check_node()
    from bot.llm.client import is_priced

    models = default_models()
    yield from check_model_keys(
        models,
        provider_of=_provider_of,
        missing_keys=_missing_keys,
        scripted=settings.model_script is not None,
    )
    yield check_prices(models, priced=is_priced)


# ---- refusing to start ------------------------------------------------------------------


def require_sandbox(sandbox: str, sandbox_user: str) -> None:
    """Raise `SandboxUnavailable` with its fix unless `sandbox` can isolate agents here.

    As root, the sandbox user is created first (once the tools are there), as `bosun serve`
    and `bosun demo` would do anyway.
    """
    if sandbox != "bubblewrap":
        return
    problems = missing_tools()
    if not problems and os.geteuid() == 0:
        try:
            ensure_sandbox_user(sandbox_user)
        except SandboxError as exc:
            raise SandboxUnavailable(str(exc), fix=" ".join(useradd_argv(sandbox_user))) from exc
    problems = problems or sandbox_problems(BubblewrapBackend(sandbox_user=sandbox_user))
    if problems:
        raise SandboxUnavailable(
            f"the sandbox cannot isolate agents: {_whats(problems)}", fix=_fixes(problems)
        )


def require_git() -> None:
    if shutil.which("git") is None:
        raise SettingsError("git is not installed", fix=install_command("git"))


def _whats(problems: Sequence[SandboxProblem]) -> str:
    return "; ".join(problem.what for problem in problems)


def _fixes(problems: Sequence[SandboxProblem]) -> str | None:
    fixes = dict.fromkeys(problem.fix for problem in problems if problem.fix)
    return "; ".join(fixes) or None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no reason given"


def _version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 -- a tool found on PATH, asked its version
            argv, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
