"""A repo's `.bosun/` config from its default branch under its org's ceilings, cached by
commit; each repo's last good config is kept, in the store when there is one."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from bot.config.effective import Effective, effective_config
from bot.config.load import Problem, parse_file
from bot.config.models import Policy, TaskSpec
from bot.config.yamlsafe import MAX_BYTES
from bot.core.errors import GitHubError
from bot.github.client import GitHubClient
from bot.github.repos import FileTooLarge
from bot.github.types import Repo

log = structlog.get_logger("bosun.config")

BOSUN_DIR = ".bosun/"
POLICY_PATH = ".bosun/policy.yaml"
TASKS_DIR = ".bosun/tasks"
# The organisation's ceilings live in its `.github` repository, on the default branch.
ORG_REPO = ".github"
CACHED_COMMITS = 256

V = TypeVar("V")


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


class GoodConfigs(Protocol):
    """Where each repository's last good config commit outlives the process (the store)."""

    def remember_good(self, repo_full_name: str, sha: str) -> None: ...

    def last_good(self, repo_full_name: str) -> str | None: ...


def is_config_path(path: str) -> bool:
    return path.startswith(BOSUN_DIR)


def org_repo(repo: Repo) -> Repo:
    """The owner's `.github` repository, seen through the same installation."""
    return Repo(installation_id=repo.installation_id, owner=repo.owner, name=ORG_REPO)


def is_org_repo(repo: Repo) -> bool:
    return repo.name == ORG_REPO


def validate(repo: Repo, files: Mapping[str, bytes], *, org: Mapping[str, bytes]) -> Effective:
    """The effective config of `files`: under the org's policy `org`, or, in the org's
    `.github` repository, `files`' own policy taken as the org policy, its tasks under it."""
    if not is_org_repo(repo):
        return effective_config(repo_files=files, org_files=org)
    policy = {path: raw for path, raw in files.items() if path == POLICY_PATH}
    tasks = {path: raw for path, raw in files.items() if path != POLICY_PATH}
    return effective_config(repo_files=tasks, org_files=policy, org_label=POLICY_PATH)


async def fetch_files(github: GitHubClient, repo: Repo, *, sha: str | None) -> dict[str, bytes]:
    """Read `.bosun/policy.yaml` and `.bosun/tasks/*.yaml` at one commit (None: default branch).

    A file too large for GitHub to send inline stands in as `MAX_BYTES + 1` bytes, all the
    loader needs to refuse it by size, at `file:1:1`, as it refuses a large file on disk.
    """
    names = [
        path
        for path in await github.repos.list_directory(repo=repo, path=TASKS_DIR, ref=sha)
        if path.endswith((".yaml", ".yml"))
    ]
    paths = [POLICY_PATH, *names]
    contents = await asyncio.gather(*(_read(github, repo, path, sha) for path in paths))
    return {
        path: content for path, content in zip(paths, contents, strict=True) if content is not None
    }


async def _read(github: GitHubClient, repo: Repo, path: str, sha: str | None) -> bytes | None:
    try:
        return await github.repos.get_file(repo=repo, path=path, ref=sha)
    except FileTooLarge:
        return bytes(MAX_BYTES + 1)


class ConfigProvider:
    """Loads each commit's config once, and remembers each repo's last good config commit.

    The org's policy is its `.github` repository's, on the default branch, or its last good
    one while that is broken. With `good` (the store's), last good commits outlive a restart.
    """

    def __init__(self, github: GitHubClient, *, good: GoodConfigs | None = None) -> None:
        self._github = github
        self._good_store = good
        self._files: OrderedDict[tuple[str, str], dict[str, bytes]] = OrderedDict()
        self._by_commit: OrderedDict[tuple[str, str], Effective] = OrderedDict()
        self._good: dict[str, str] = {}

    async def for_repo(self, repo: Repo, *, default_branch: str) -> RepoConfig:
        """The default branch's config; if it has problems, the last good one, marked stale."""
        sha = await self._github.repos.get_branch_sha(repo=repo, branch=default_branch)
        org = await self.org_files(repo)
        loaded = await self._load(repo, sha, org)
        if not loaded.problems:
            await self.accept(repo, sha)
            return _config(sha, loaded)
        log.warning(
            "config has errors", repo=repo.full_name, sha=sha, problems=len(loaded.problems)
        )
        good_sha = await self.last_good_sha(repo)
        if good_sha is None or good_sha == sha:
            # Nothing to fall back on: the valid tasks of this commit serve, if its policy does.
            broken = _unparsable(await self.files_at(repo, sha))
            tasks = {} if broken else loaded.tasks
            return _config(sha, loaded, tasks=tasks, unusable=broken)
        good = await self._load(repo, good_sha, org)
        return _config(good_sha, good, problems=loaded.problems, stale=True)

    async def at_commit(self, repo: Repo, sha: str) -> RepoConfig:
        """The config of one commit, as a task recorded it when it was queued."""
        loaded = await self._load(repo, sha, await self.org_files(repo))
        return _config(sha, loaded, unusable=_unparsable(await self.files_at(repo, sha)))

    async def validate(self, repo: Repo, sha: str) -> Effective:
        """The effective config of one commit under the org policy as it stands."""
        return await self._load(repo, sha, await self.org_files(repo))

    async def files_at(self, repo: Repo, sha: str) -> dict[str, bytes]:
        """The `.bosun/` files of one commit, read once per commit."""
        key = (repo.full_name, sha)
        if key not in self._files:
            _remember(self._files, key, await fetch_files(self._github, repo, sha=sha))
        self._files.move_to_end(key)
        return self._files[key]

    async def org_files(self, repo: Repo) -> dict[str, bytes]:
        """The org policy over `repo`, as `{POLICY_PATH: bytes}`; {} when there is none.

        The `.github` repository's default branch rules, unless its policy is broken: then
        its last good one does, so that a typo there never lifts every ceiling at once.
        """
        org = org_repo(repo)
        sha = await self._default_head(org)
        if sha is None:
            return {}
        files = await self._org_policy(org, sha)
        if not _unparsable(files):
            await self.accept(org, sha)
            return files
        good = await self.last_good_sha(org)
        return files if good is None or good == sha else await self._org_policy(org, good)

    async def accept(self, repo: Repo, sha: str) -> None:
        """Take `sha` as the repo's last good config commit, here and in the store."""
        if self._good.get(repo.full_name) == sha:
            return
        self._good[repo.full_name] = sha
        if self._good_store is not None:
            await asyncio.to_thread(self._good_store.remember_good, repo.full_name, sha)

    async def last_good_sha(self, repo: Repo) -> str | None:
        """The repo's last good config commit: remembered here, or in the store."""
        sha = self._good.get(repo.full_name)
        if sha is None and self._good_store is not None:
            sha = await asyncio.to_thread(self._good_store.last_good, repo.full_name)
            if sha is not None:
                self._good[repo.full_name] = sha
        return sha

    async def _default_head(self, repo: Repo) -> str | None:
        try:
            branch = (await self._github.repos.get_repository(repo=repo)).default_branch
        except GitHubError as exc:
            if exc.status_code == 404:  # no such repository, or not granted to the App
                return None
            raise
        return await self._github.repos.get_branch_sha(repo=repo, branch=branch)

    async def _org_policy(self, org: Repo, sha: str) -> dict[str, bytes]:
        key = (org.full_name, f"policy@{sha}")
        if key not in self._files:
            raw = await _read(self._github, org, POLICY_PATH, sha)
            _remember(self._files, key, {} if raw is None else {POLICY_PATH: raw})
        return self._files[key]

    async def _load(self, repo: Repo, sha: str, org: Mapping[str, bytes]) -> Effective:
        digest = hashlib.sha256(org.get(POLICY_PATH, b"")).hexdigest() if org else "-"
        key = (repo.full_name, f"{sha}:{digest}")
        if key not in self._by_commit:
            _remember(self._by_commit, key, validate(repo, await self.files_at(repo, sha), org=org))
        self._by_commit.move_to_end(key)
        return self._by_commit[key]


def _config(
    sha: str,
    loaded: Effective,
    *,
    tasks: Mapping[str, TaskSpec] | None = None,
    problems: tuple[Problem, ...] | None = None,
    stale: bool = False,
    unusable: bool = False,
) -> RepoConfig:
    return RepoConfig(
        sha=sha,
        policy=loaded.policy,
        tasks=loaded.tasks if tasks is None else tasks,
        problems=loaded.problems if problems is None else problems,
        stale=stale,
        unusable=unusable,
    )


def _remember(cache: OrderedDict[tuple[str, str], V], key: tuple[str, str], value: V) -> None:
    cache[key] = value
    if len(cache) > CACHED_COMMITS:
        cache.popitem(last=False)


def _unparsable(files: Mapping[str, bytes]) -> bool:
    """Whether the files' policy is there and is no valid policy at all."""
    raw = files.get(POLICY_PATH)
    return raw is not None and isinstance(parse_file(POLICY_PATH, raw, Policy), list)
