"""The `bosun` command. Heavy libraries are imported inside each command, never at the top.

Exit codes: 0 done; 1 a failure, or something the command needs is missing (one line on
standard error: `bosun: <what> — fix: <command>`); 2 a usage error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

DEMO_WITHOUT_ISOLATION = "bosun demo --sandbox process (a demo without isolation)"


def refuse(exc: Exception, *, alternative: str | None = None) -> NoReturn:
    """One line on standard error, what is missing and the command that fixes it; exit 1."""
    what = " ".join(str(exc).split()) or type(exc).__name__
    fix = getattr(exc, "fix", None) or "bosun doctor (it lists what is missing, with fixes)"
    if alternative:
        fix = f"{fix}, or {alternative}"
    click.echo(f"bosun: {what} — fix: {fix}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bosun")
def main() -> None:
    """Bosun: queue, schedule, isolate, price and audit coding agents from GitHub events."""


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo's repository, forge and store.")
@click.option(
    "--sandbox",
    type=click.Choice(["bubblewrap", "process"]),
    default="bubblewrap",
    show_default=True,
    help="Isolation for the agent; `process` runs it without any.",
)
def demo(keep: bool, sandbox: str) -> None:
    """Run the whole loop on this machine: no GitHub account, no model key.

    A local stand-in forge holds a repository with a sample `.bosun/` and an issue; the
    issue is labelled, Bosun queues and runs the task with a scripted model in the real
    sandbox, commits, pushes and opens a pull request on the forge, then prints the diff,
    the check run and the status comment.
    """
    from bot.core.errors import BosunError, SandboxUnavailable
    from bot.doctor import require_git, require_sandbox
    from bot.settings import Settings
    from sandbox.backends.base import SandboxError

    try:
        require_git()
        require_sandbox(sandbox, Settings().sandbox_user)
        from bot.demo.run import main as run_demo

        code = run_demo(keep=keep, sandbox=sandbox)
    except (BosunError, SandboxError) as exc:
        sandboxed = isinstance(exc, SandboxUnavailable | SandboxError) and sandbox == "bubblewrap"
        refuse(exc, alternative=DEMO_WITHOUT_ISOLATION if sandboxed else None)
    sys.exit(code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Run the webhook intake, handlers and scheduler in one process.

    Configured by environment: BOSUN_WEBHOOK_SECRET (required), BOSUN_DATABASE_URL
    (default sqlite:///bosun.db), BOSUN_APP_ID with BOSUN_PRIVATE_KEY or
    BOSUN_PRIVATE_KEY_FILE, BOSUN_GITHUB_API_URL.
    """
    from bot.core.errors import BosunError
    from bot.doctor import require_sandbox
    from bot.settings import Settings
    from sandbox.backends.base import SandboxError

    try:
        settings = Settings.from_env()
        settings.require_webhook_secret()
        if settings.github_app_configured:  # only then does serve run agents
            require_sandbox(settings.sandbox, settings.sandbox_user)
        from bot.serve import run_server

        run_server(settings, host=host, port=port)
    except (BosunError, SandboxError) as exc:
        refuse(exc)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
def doctor(as_json: bool) -> None:
    """Check this machine for what `bosun serve` needs, and say how to fix what is missing.

    One line a check: `ok`, `missing` (serve needs it) or `note` (it does not), then the
    command that fixes it. Reads the environment `bosun serve` reads. Exit 0 when nothing
    serve needs is missing, 1 otherwise.
    """
    import json

    from bot.doctor import run_checks

    checks = []
    for check in run_checks(os.environ):
        checks.append(check)
        if not as_json:
            click.echo(check.line())
    if as_json:
        click.echo(json.dumps([check.as_dict() for check in checks], indent=2))
    missing = [check.name for check in checks if check.blocking]
    if missing:
        click.echo(f"bosun doctor: missing for bosun serve: {', '.join(missing)}", err=True)
        sys.exit(1)
    click.echo("bosun doctor: bosun serve has what it needs", err=True)


_ORG_OPTION = click.option(
    "--org",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The org policy: a policy file, or a checkout of the org's .github repository.",
)


@main.command()
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_ORG_OPTION
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github"]),
    default=None,
    help="text: `file:line:col: message`; github: workflow commands that GitHub Actions shows "
    "as annotations (the default when GITHUB_ACTIONS=true).",
)
def lint(path: Path, org: Path | None, output_format: str | None) -> None:
    """Validate the `.bosun/` files of a checkout at PATH.

    Prints one `file:line:col: message` per problem (under GitHub Actions, one `::error`
    workflow command). With --org, the repository's policy is also checked against the
    org's ceilings. Exit 0 when clean, 1 on problems, 2 on usage errors.
    """
    from bot.config.lint import lint_checkout, workflow_command

    if output_format is None:
        output_format = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    problems = lint_checkout(path, org=org)
    for problem in problems:
        if output_format == "github":
            click.echo(workflow_command(problem, checkout=path, org=org, root=Path.cwd()))
        else:
            click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    click.echo(f"{path}: .bosun/ is valid", err=True)


@main.group()
def bench() -> None:
    """Benchmarks that print figures, ending with one `bench=<name> key=value` line."""


@bench.command("startup")
@click.option("--runs", default=10, show_default=True, type=int)
def bench_startup(runs: int) -> None:
    """Time `bosun --help` in fresh interpreters."""
    from bot.bench.startup import run

    run(runs=runs)


@bench.command("webhook")
@click.option("--seconds", default=5.0, show_default=True, type=float, help="Per phase.")
@click.option("--rate", default=200, show_default=True, type=int, help="Paced deliveries/s.")
@click.option("--database-url", default=None, help="Store for the server under test.")
def bench_webhook(seconds: float, rate: int, database_url: str | None) -> None:
    """Drive signed deliveries at a running `bosun serve` and a bare aiohttp endpoint."""
    from bot.bench.webhook import run

    run(seconds=seconds, rate=rate, database_url=database_url)


@bench.command("scheduler")
@click.option("--tasks", default=2000, show_default=True, type=int)
@click.option("--branches", default=200, show_default=True, type=int)
@click.option("--slots", default=20, show_default=True, type=int)
@click.option("--min-ms", default=50, show_default=True, type=int, help="Shortest fake run.")
@click.option("--max-ms", default=450, show_default=True, type=int, help="Longest fake run.")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--database-url", default=None, help="Store to schedule from (default: SQLite).")
def bench_scheduler(
    tasks: int,
    branches: int,
    slots: int,
    min_ms: int,
    max_ms: int,
    seed: int,
    database_url: str | None,
) -> None:
    """Run the real scheduler over fake agent runs; compare the makespan to its lower bound."""
    from bot.bench.scheduler import run

    run(
        tasks=tasks,
        branches=branches,
        slots=slots,
        min_ms=min_ms,
        max_ms=max_ms,
        seed=seed,
        database_url=database_url,
    )


@main.group()
def task() -> None:
    """Tasks as the store keeps them."""


@task.command("show")
@click.argument("task_id", type=int)
def task_show(task_id: int) -> None:
    """Print a task: state, attempts, model calls, every step with its output, audit records.

    Reads the store BOSUN_DATABASE_URL names (default sqlite:///bosun.db). Exit 1 when
    there is no such task.
    """
    from bot.core.clock import SystemClock
    from bot.core.errors import BosunError
    from bot.execution.publication import step_lines
    from bot.settings import Settings
    from bot.store import Store
    from bot.texts.task_report import task_report

    try:
        store = Store.connect(Settings.from_env().database_url, clock=SystemClock())
        found = store.tasks.get(task_id)
        if found is None:
            click.echo(f"bosun: no task {task_id} in the store", err=True)
            sys.exit(1)
        report = task_report(
            found,
            calls=store.model_calls.for_task(task_id),
            steps=step_lines(store.transcripts.for_task(task_id)),
            audits=store.audit.for_task(task_id),
        )
        store.close()
    except BosunError as exc:
        refuse(exc)
    click.echo(report)


@main.group()
def policy() -> None:
    """The effective policy of a repository under its org's ceilings."""


@policy.command("explain")
@click.argument("checkout", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_ORG_OPTION
def policy_explain(checkout: Path, org: Path | None) -> None:
    """Print the effective policy of CHECKOUT, one key a line, with where each value came from.

    Each line reads `key: value  (origin)`, origin being org, repo or default. Problems go to
    standard error as `file:line:col: message`; exit 1 when there are any.
    """
    from bot.config.effective import ORG_POLICY_LABEL, effective_config
    from bot.config.explain import explain_lines
    from bot.config.lint import read_org_policy
    from bot.config.load import read_checkout
    from bot.core.errors import ConfigError

    try:
        files = read_checkout(checkout)
        org_files, label = read_org_policy(org) if org is not None else (None, ORG_POLICY_LABEL)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    effective = effective_config(repo_files=files, org_files=org_files, org_label=label)
    for line in explain_lines(effective):
        click.echo(line)
    for problem in effective.problems:
        click.echo(str(problem), err=True)
    if effective.problems:
        sys.exit(1)


@main.group()
def schema() -> None:
    """The JSON Schema of `.bosun/` files."""


@schema.command("export")
@click.argument("out", default="policies/schema", type=click.Path(file_okay=False, path_type=Path))
def schema_export(out: Path) -> None:
    """Write the JSON Schema of policy and task files to OUT."""
    from bot.config.schema import export_schemas

    for written in export_schemas(out):
        click.echo(written)


if __name__ == "__main__":
    main()
