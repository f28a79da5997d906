"""Builds the worker from settings: sandbox backend, model client and workspace root."""

from __future__ import annotations

import os

import structlog

from bot.config.source import ConfigProvider
from bot.core.clock import Clock
from bot.core.errors import SettingsError
from bot.core.redaction import Redactor, secrets_in
from bot.execution.publication import Publisher
from bot.execution.worker import Worker, WorkerDeps
from bot.github.client import GitHubClient
from bot.llm.client import LLM
from bot.settings import Settings
from bot.store import Store
from sandbox.backends import make_backend
from sandbox.runtime.script import load_script
from sandbox.setup import check_sandbox, ensure_sandbox_user

log = structlog.get_logger("bosun.runner")


def build_worker(
    settings: Settings,
    *,
    store: Store,
    github: GitHubClient,
    configs: ConfigProvider,
    clock: Clock,
    holder: str,
    publisher: Publisher,
) -> Worker:
    """A worker ready to run tasks, or a SettingsError that says what the sandbox lacks."""
    if settings.sandbox == "bubblewrap" and os.geteuid() == 0:
        ensure_sandbox_user(settings.sandbox_user)
    backend = make_backend(settings.sandbox, sandbox_user=settings.sandbox_user)
    problems = check_sandbox(backend)
    if problems:
        raise SettingsError("the sandbox cannot isolate agents: " + "; ".join(problems))
    if settings.sandbox == "process":
        log.warning("BOSUN_SANDBOX=process: agents run WITHOUT isolation on this host")
    script = load_script(settings.model_script) if settings.model_script else None
    if script is not None:
        log.warning("BOSUN_MODEL_SCRIPT is set: a scripted model answers, not a real one")
    return Worker(
        WorkerDeps(
            store=store,
            github=github,
            configs=configs,
            llm=LLM(),
            backend=backend,
            backend_name=settings.sandbox,
            workspace_root=settings.workspace_dir,
            clock=clock,
            holder=holder,
            lease_ttl=settings.lease_seconds,
            script=script,
            publisher=publisher,
            redact=Redactor(secrets_in(os.environ)),
        )
    )
