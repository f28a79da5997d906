"""The `bosun/policy` check run: a verdict on a commit's `.bosun/` (problems, the diff of the
effective policy, what the change does to live tasks), posted once per commit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.config.impact import LiveTask, policy_diff, render_diff, render_impacts, simulate
from bot.config.load import Problem
from bot.config.source import (
    POLICY_PATH,
    ConfigProvider,
    is_config_path,
    is_org_repo,
    validate,
)
from bot.core.task_states import TaskState
from bot.github.client import GitHubClient
from bot.github.types import Annotation, CheckConclusion, CheckStatus, Repo
from bot.store.tables import Task
from bot.tasks.context import HandlerContext

CHECK_NAME = "bosun/policy"
LIVE_STATES = (TaskState.QUEUED, TaskState.RUNNING)
LISTED_PROBLEMS = 50


@dataclass(frozen=True, kw_only=True)
class PolicyVerdict:
    """What `bosun/policy` says about one commit: its problems, and the text around them."""

    title: str
    summary: str
    problems: tuple[Problem, ...]

    @property
    def conclusion(self) -> CheckConclusion:
        return CheckConclusion.FAILURE if self.problems else CheckConclusion.SUCCESS


async def review_change(
    ctx: HandlerContext, repo: Repo, *, base_sha: str, head_sha: str
) -> PolicyVerdict:
    """Validate `.bosun/` at `head_sha` against the base, diff and simulate the change."""
    _, configs = ctx.require_github()
    org = {} if is_org_repo(repo) else await configs.org_files(repo)
    before = validate(repo, await configs.files_at(repo, base_sha), org=org)
    after = validate(repo, await configs.files_at(repo, head_sha), org=org)
    if is_org_repo(repo):
        impacts = await _org_impacts(ctx, repo, await configs.files_at(repo, head_sha))
    else:
        impacts = render_impacts(simulate(after, await live_tasks(ctx, repo)))
    diff = render_diff(policy_diff(before.policy, after.policy))
    sections = [
        problem_section(after.problems),
        f"### Effective policy, before → after\n\n{diff}",
        f"### Queued and running tasks\n\n{impacts}",
    ]
    scope = "org policy" if is_org_repo(repo) else "policy"
    count = len(after.problems)
    title = f"{count} problem{'s' * (count != 1)} in .bosun/" if count else f"Valid {scope}"
    return PolicyVerdict(title=title, summary="\n\n".join(sections), problems=after.problems)


async def post_policy_check(
    github: GitHubClient, repo: Repo, *, head_sha: str, verdict: PolicyVerdict
) -> int:
    """`bosun/policy` on the commit: one per commit, completed, one annotation per problem."""
    fields: dict[str, Any] = {
        "conclusion": verdict.conclusion,
        "title": verdict.title,
        "summary": verdict.summary,
    }
    existing = await github.checks.find_check_run(repo=repo, head_sha=head_sha, name=CHECK_NAME)
    # GitHub appends annotations on each update: a run that has them already keeps them.
    annotated = existing is not None and existing.annotations_count > 0
    annotations = [] if annotated else annotations_for(verdict.problems)
    if existing is not None:
        run = await github.checks.update_check_run(
            repo=repo,
            check_run_id=existing.id,
            status=CheckStatus.COMPLETED,
            annotations=annotations,
            **fields,
        )
    else:
        run = await github.checks.create_check_run(
            repo=repo,
            name=CHECK_NAME,
            head_sha=head_sha,
            status=CheckStatus.COMPLETED,
            annotations=annotations,
            **fields,
        )
    return run.id


def annotations_for(problems: Sequence[Problem]) -> list[Annotation]:
    """One failure annotation per problem in a file of this repository, at its line and column."""
    return [
        Annotation(
            path=problem.path,
            start_line=problem.line,
            end_line=problem.line,
            start_column=problem.col,
            end_column=problem.col,
            message=problem.message,
            title=CHECK_NAME,
        )
        for problem in problems
        if is_config_path(problem.path) and problem.line > 0
    ]


async def live_tasks(ctx: HandlerContext, repo: Repo) -> list[LiveTask]:
    """The repo's queued and running tasks, with the agent and tier their config gave them."""
    github, configs = ctx.require_github()
    tasks = [
        task
        for task in await asyncio.to_thread(ctx.store.tasks.all, repo.full_name)
        if task.state in LIVE_STATES
    ]
    permissions = {
        user: await github.repos.permission_of(repo=repo, username=user)
        for user in sorted({task.triggered_by for task in tasks})
    }
    return [await _live(configs, repo, task, permissions) for task in tasks]


async def _live(
    configs: ConfigProvider, repo: Repo, task: Task, permissions: Mapping[str, str]
) -> LiveTask:
    config = await configs.at_commit(repo, task.config_sha) if task.config_sha else None
    spec = config.tasks.get(task.task_name) if config is not None else None
    default_tier = config.policy.models.default_tier if config is not None else ""
    return LiveTask(
        id=task.id or 0,
        task_name=task.task_name,
        state="running" if task.state == TaskState.RUNNING else "queued",
        agent=spec.agent if spec is not None else "",
        tier=(spec.tier if spec is not None and spec.tier else default_tier),
        triggered_by_permission=permissions.get(task.triggered_by, "none"),
        cost_usd=task.cost_usd,
        issue_number=task.issue_number,
    )


async def _org_impacts(ctx: HandlerContext, org: Repo, head_files: Mapping[str, bytes]) -> str:
    """What the org policy at the head would do to the live tasks of every repository of the
    installation: each under its own default branch's policy, tightened by the new ceilings."""
    github, configs = ctx.require_github()
    ceilings = {path: raw for path, raw in head_files.items() if path == POLICY_PATH}
    sections: list[str] = []
    names = await asyncio.to_thread(ctx.store.installations.repositories, org.installation_id)
    for full_name in names:
        owner, _, name = full_name.partition("/")
        repo = Repo(installation_id=org.installation_id, owner=owner, name=name)
        if is_org_repo(repo):
            continue
        live = await live_tasks(ctx, repo)
        if not live:
            continue
        branch = (await github.repos.get_repository(repo=repo)).default_branch
        sha = await github.repos.get_branch_sha(repo=repo, branch=branch)
        after = validate(repo, await configs.files_at(repo, sha), org=ceilings)
        impacts = simulate(after, live)
        if impacts:
            sections.append(f"**{full_name}**\n\n{render_impacts(impacts)}")
    return "\n\n".join(sections) or render_impacts([])


def problem_section(problems: Sequence[Problem]) -> str:
    if not problems:
        return "### Problems\n\nNone: every `.bosun/` file is valid."
    lines = [f"- `{problem}`" for problem in problems[:LISTED_PROBLEMS]]
    if len(problems) > LISTED_PROBLEMS:
        lines.append(f"- … and {len(problems) - LISTED_PROBLEMS} more (see the annotations)")
    return "### Problems\n\n" + "\n".join(lines)
