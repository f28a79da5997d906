"""A repo's `.bosun/` config from its default branch, cached by commit; keeps the last good."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from bot.config.load import LoadedConfig, Problem, load_config
from bot.config.models import Policy, TaskSpec
from bot.github import GitHubClient, Repo

log = structlog.get_logger("bosun.config")

POLICY_PATH = ".bosun/policy.yaml"
TASKS_DIR = ".bosun/tasks"
CACHED_COMMITS = 256


@dataclass(frozen=True, kw_only=True)
class RepoConfig:
    """The config a repo runs under: the head's if valid, else the last good one (`stale`)."""

    sha: str
    policy: Policy
    tasks: Mapping[str, TaskSpec]
    problems: tuple[Problem, ...]
    stale: bool = False
    unusable: bool = False

    def task_problems(self, task_name: str) -> tuple[Problem, ...]:
        paths = {f"{TASKS_DIR}/{task_name}.yaml", f"{TASKS_DIR}/{task_name}.yml"}
        return tuple(problem for problem in self.problems if problem.path in paths)

    def problem_list(self, limit: int = 20) -> str:
        lines = [f"- `{problem}`" for problem in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"- … and {len(self.problems) - limit} more")
        return "\n".join(lines)


async def fetch_files(github: GitHubClient, repo: Repo, *, sha: str) -> dict[str, bytes]:
    """Read `.bosun/policy.yaml` and `.bosun/tasks/*.yaml` at one commit."""
    names = [
        path
        for path in await github.list_directory(repo=repo, path=TASKS_DIR, ref=sha)
        if path.endswith((".yaml", ".yml"))
    ]
    paths = [POLICY_PATH, *names]
    contents = await asyncio.gather(
        *(github.get_file(repo=repo, path=path, ref=sha) for path in paths)
    )
    return {
        path: content for path, content in zip(paths, contents, strict=True) if content is not None
    }


class ConfigProvider:
    """Loads each commit's config once, and remembers each repo's last good config."""

    def __init__(self, github: GitHubClient) -> None:
        self._github = github
        self._by_commit: OrderedDict[tuple[str, str], LoadedConfig] = OrderedDict()
        self._last_good: dict[str, RepoConfig] = {}

    async def for_repo(self, repo: Repo, *, default_branch: str) -> RepoConfig:
        sha = await self._github.get_branch_sha(repo=repo, branch=default_branch)
        loaded = await self._load(repo, sha)
        current = RepoConfig(
            sha=sha, policy=loaded.policy, tasks=loaded.tasks, problems=loaded.problems
        )
        if not _policy_broken(loaded):
            self._last_good[repo.full_name] = current
            return current
        log.warning(
            "config has errors", repo=repo.full_name, sha=sha, problems=len(loaded.problems)
        )
        good = self._last_good.get(repo.full_name)
        if good is None:
            return RepoConfig(
                sha=sha, policy=loaded.policy, tasks={}, problems=loaded.problems, unusable=True
            )
        return RepoConfig(
            sha=good.sha, policy=good.policy, tasks=good.tasks, problems=loaded.problems, stale=True
        )

    async def at_commit(self, repo: Repo, sha: str) -> RepoConfig:
        """The config of one commit, as a task recorded it when it was queued."""
        loaded = await self._load(repo, sha)
        return RepoConfig(
            sha=sha,
            policy=loaded.policy,
            tasks=loaded.tasks,
            problems=loaded.problems,
            unusable=_policy_broken(loaded),
        )

    async def _load(self, repo: Repo, sha: str) -> LoadedConfig:
        key = (repo.full_name, sha)
        if key in self._by_commit:
            self._by_commit.move_to_end(key)
            return self._by_commit[key]
        loaded = load_config(await fetch_files(self._github, repo, sha=sha))
        self._by_commit[key] = loaded
        if len(self._by_commit) > CACHED_COMMITS:
            self._by_commit.popitem(last=False)
        return loaded


def _policy_broken(loaded: LoadedConfig) -> bool:
    return any(problem.path == POLICY_PATH for problem in loaded.problems)
