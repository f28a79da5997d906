"""Typed models of `.bosun/policy.yaml` and `.bosun/tasks/*.yaml`; unknown keys are errors."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.config.prompt import template_problem
from bot.core.paths import matches

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
_COMMAND = re.compile(r"^[A-Za-z0-9._+-]+$")
# A GitHub login, or `org/team-slug` for a team.
MENTION_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?$"
# `owner/name`, or `name` for a repository of the organisation.
REPO_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9-]{0,38}/)?[A-Za-z0-9._-]{1,100}$"
SELECTOR_KEY_PATTERN = r"^[a-z0-9][a-z0-9._/-]{0,62}$"
# A host the egress proxy may reach during setup: `pypi.org`, `*.npmjs.org`, `host:port`.
HOST_PATTERN = (
    r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*(:[0-9]{1,5})?$"
)
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]{0,127}$"


def is_name(value: str) -> bool:
    """Whether `value` can name a task, agent, tier or task type."""
    return _NAME.fullmatch(value) is not None


def _name(value: str) -> str:
    if not is_name(value):
        raise PydanticCustomError(
            "name",
            "'{value}' is not a valid name: use lowercase letters, digits and dashes, "
            "starting with a letter or digit, at most 63 characters",
            {"value": value},
        )
    return value


def _glob(value: str) -> str:
    parts = value.split("/")
    if not value or value.startswith("/") or "\\" in value or ".." in parts:
        raise PydanticCustomError(
            "path_glob",
            "'{value}' is not a path glob relative to the repository root "
            "(use `/`, no leading `/`, no `..`)",
            {"value": value},
        )
    return value


def _command(value: str) -> str:
    if not _COMMAND.match(value):
        raise PydanticCustomError(
            "command_name", "'{value}' is not a command name (such as pytest)", {"value": value}
        )
    return value


# Names of tasks, agents, tiers and task types: what a label `agent:<task>` can carry.
Name = Annotated[
    str, AfterValidator(_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})
]

PathGlob = Annotated[str, AfterValidator(_glob), WithJsonSchema({"type": "string", "minLength": 1})]
CommandName = Annotated[
    str, AfterValidator(_command), WithJsonSchema({"type": "string", "pattern": _COMMAND.pattern})
]
# Editors flag a key of a name-keyed mapping that `patternProperties` does not match.
_NAMED_ONLY: dict[str, JsonValue] = {"additionalProperties": False}
ModelName = Annotated[str, Field(min_length=1, pattern=r"^\S+$")]
Usd = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Mention = Annotated[str, Field(pattern=MENTION_PATTERN)]
RepoRef = Annotated[str, Field(pattern=REPO_PATTERN)]
SelectorKey = Annotated[str, Field(pattern=SELECTOR_KEY_PATTERN)]
SelectorValue = Annotated[str, Field(min_length=1, max_length=63)]
PositiveCount = Annotated[int, Field(gt=0, le=100_000)]
# A command line, run with /bin/sh -c in the sandbox at the repository's root.
ShellLine = Annotated[str, Field(min_length=1, max_length=4000)]
HostPattern = Annotated[str, Field(pattern=HOST_PATTERN, max_length=253)]
EnvName = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]


def located(
    at: Sequence[str | int], kind: str, message: str, **context: Any
) -> PydanticCustomError:
    """An error that a model-level validator reports at the nested key `at` below the model.

    The loader adds `at` to the error's location, so the error points at that key's line.
    """
    return PydanticCustomError(kind, message, {**context, "at": tuple(at)})


@functools.total_ordering
class Permission(enum.Enum):
    """A GitHub repository permission, from least to most: read, triage, write, maintain, admin."""

    READ = "read"
    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order read < triage < write < maintain < admin."""
        return list(Permission).index(self)

    def allows(self, actual: str) -> bool:
        """Whether a user whose GitHub `role_name` is `actual` holds at least this permission.

        `none`, and any role name GitHub may add (custom repository roles), never do.
        """
        try:
            return Permission(actual) >= self
        except ValueError:
            return False

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Permission):
            return NotImplemented
        return self.rank < other.rank


def permission_at_least(actual: str, required: Permission) -> bool:
    """Whether the GitHub `role_name` `actual` is at least `required` (`none` never is)."""
    return required.allows(actual)


class Tool(enum.StrEnum):
    """A tool of the built-in agent runtime."""

    LIST_FILES = "list_files"
    READ_FILE = "read_file"
    WRITE_FILE = "write_file"
    EDIT_FILE = "edit_file"
    RUN_COMMAND = "run_command"


class ConfigModel(BaseModel):
    """Base of every `.bosun/` model: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Triggers(ConfigModel):
    """Who may start tasks, and how."""

    label_prefix: str = Field(default="agent:", min_length=1)
    """An issue or pull request label `<label_prefix><task>` queues that task."""

    min_permission: Permission = Permission.WRITE
    """The least GitHub permission that starts a task by label or slash command."""

    ok_to_run_permission: Permission = Field(default=Permission.MAINTAIN, validate_default=True)
    """The least permission whose `/bosun ok-to-run` releases a request held for someone below
    `min_permission`."""

    @field_validator("ok_to_run_permission")
    @classmethod
    def _ok_to_run_at_least_min(cls, value: Permission, info: ValidationInfo) -> Permission:
        least = info.data.get("min_permission")
        if isinstance(least, Permission) and value < least:
            raise PydanticCustomError(
                "permission_order",
                "'{value}' is below min_permission '{least}': raise it to at least '{least}'",
                {"value": value.value, "least": least.value},
            )
        return value


class Limits(ConfigModel):
    """Resources one run of an agent may use inside its sandbox."""

    cpu_seconds: int = Field(default=600, gt=0, le=86_400)
    """CPU time for every process of the run together."""

    memory_mb: int = Field(default=2048, ge=64, le=262_144)
    """Memory for every process of the run together, in MiB."""

    wall_seconds: int = Field(default=1800, gt=0, le=86_400)
    """Elapsed time before the run is stopped."""

    max_steps: int = Field(default=50, gt=0, le=1000)
    """Model turns of the built-in runtime before it stops."""


class Agent(ConfigModel):
    """An agent tasks can run: the built-in tool loop, or an external command."""

    runtime: Literal["builtin", "external"] = "builtin"
    """`builtin`: Bosun's own tool-calling loop; `external`: `command` run in the sandbox."""

    command: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1, validate_default=True
    )
    """The argv of an external agent; it reaches models only through Bosun's gateway."""

    tools: list[Tool] = [Tool.LIST_FILES, Tool.READ_FILE, Tool.WRITE_FILE, Tool.EDIT_FILE]
    """Tools the built-in runtime offers the model."""

    commands: list[CommandName] = []
    """Commands `run_command` may start, by name (for example pytest, ruff)."""

    network: Literal["none", "gateway"] = "none"
    """`none`: no network at all; `gateway`: Bosun's model gateway only."""

    limits: Limits = Limits()
    """Resources one run may use in the sandbox."""

    @field_validator("command")
    @classmethod
    def _command_iff_external(
        cls, value: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        runtime = info.data.get("runtime")
        if runtime == "external" and value is None:
            raise PydanticCustomError("command_required", "required when runtime is external")
        if runtime == "builtin" and value is not None:
            raise PydanticCustomError("command_unused", "only for agents whose runtime is external")
        return value

    @field_validator("commands")
    @classmethod
    def _commands_need_run_command(cls, value: list[str], info: ValidationInfo) -> list[str]:
        tools = info.data.get("tools")
        if value and tools is not None and Tool.RUN_COMMAND not in tools:
            raise PydanticCustomError("run_command_missing", "needs run_command in tools")
        return value


class RouteWhen(ConfigModel):
    """What a task must have for a routing rule to apply; every condition given must hold."""

    task_types: list[Name] = []
    """The task's `task_type` is one of these (any, when empty)."""

    labels: list[Annotated[str, Field(min_length=1)]] = []
    """The issue carries at least one of these labels (any, when empty)."""

    paths: list[PathGlob] = []
    """At least one path the task concerns (its scope) matches one of these globs (any, when
    empty)."""

    max_issue_chars: int | None = Field(default=None, ge=0)
    """The issue's title and body together are at most this many characters (any, when
    unset)."""


class RouteRule(ConfigModel):
    """One routing rule: tasks that match `when` use `tier`."""

    when: RouteWhen = RouteWhen()
    """The conditions; a rule without any matches every task."""

    tier: Name
    """The tier, by its name under `models.tiers`, of a task this rule matches."""


class Models(ConfigModel):
    """Model tiers, each an ordered list of models that fall back one to the next."""

    tiers: dict[Name, Annotated[list[ModelName], Field(min_length=1)]] = Field(
        min_length=1, json_schema_extra=_NAMED_ONLY
    )
    """Tier name to litellm model names, most preferred first; list tiers cheapest first."""

    default_tier: Name
    """The tier of a task that names none."""

    @field_validator("default_tier")
    @classmethod
    def _default_tier_is_a_tier(cls, value: str, info: ValidationInfo) -> str:
        tiers = info.data.get("tiers")
        if tiers is not None and value not in tiers:
            raise PydanticCustomError(
                "unknown_tier",
                "'{value}' is not a tier (tiers: {tiers})",
                {"value": value, "tiers": ", ".join(tiers)},
            )
        return value

    routing: list[RouteRule] = []
    """Ordered routing rules: the first rule a task matches picks its tier; with none, the
    task's own `tier`, else `default_tier`."""

    @model_validator(mode="after")
    def _routes_name_tiers(self) -> Self:
        for index, rule in enumerate(self.routing):
            if rule.tier not in self.tiers:
                raise located(
                    ("routing", index, "tier"),
                    "unknown_tier",
                    "'{value}' is not a tier (tiers: {tiers})",
                    value=rule.tier,
                    tiers=", ".join(self.tiers),
                )
        return self


class Budgets(ConfigModel):
    """Spending limits, in US dollars."""

    per_task_usd: Usd = 2.0
    """The most one task may spend on models, over all its attempts."""

    per_team_month_usd: dict[Name, Usd] = Field(default={}, json_schema_extra=_NAMED_ONLY)
    """Team name (under `teams`) to the most that team's tasks may spend in a calendar month."""

    per_repo_month_usd: Usd | None = None
    """The most this repository's tasks may spend in a calendar month; unlimited when unset."""


class Concurrency(ConfigModel):
    """How many tasks may run at once; unlimited where unset (the worker slots still apply)."""

    max_running_per_repo: PositiveCount | None = None
    """Running tasks of this repository at once."""

    max_running_per_team: PositiveCount | None = None
    """Running tasks triggered by the members of one team at once."""

    max_running_per_org: PositiveCount | None = None
    """Running tasks of the whole organisation at once."""


class Locks(ConfigModel):
    """Locks a running task holds. Branch locks are always on: one agent per branch."""

    path_claims: bool = False
    """Also claim the task's `scope` globs, so that no two running tasks of the repository
    change overlapping paths. Branch locks are always on, whatever this says."""


class Review(ConfigModel):
    """What an agent's pull request needs from people before it merges."""

    required_approvals: int = Field(default=1, ge=0, le=100)
    """Approving reviews needed; Bosun never merges with fewer."""

    counts: Permission = Permission.WRITE
    """The least GitHub permission of a reviewer whose approval counts."""

    auto_merge: bool = False
    """Merge the pull request once its approvals and checks are in; off: people merge."""

    merge_method: Literal["merge", "squash", "rebase"] = "squash"
    """How Bosun merges when `auto_merge` is on: a merge commit, one squashed commit, or the
    commits rebased onto the base branch."""

    delete_branch_on_close: bool = True
    """Delete the agent's own `bosun/` branch when its pull request is closed unmerged; a
    branch of a person's pull request is never deleted."""

    @model_validator(mode="after")
    def _auto_merge_needs_approval(self) -> Self:
        # Bosun merges only what people have approved.
        if self.auto_merge and self.required_approvals == 0:
            raise located(
                ("auto_merge",),
                "auto_merge_unapproved",
                "needs required_approvals of at least 1: Bosun merges only after a person approves",
            )
        return self


class CommandLimits(ConfigModel):
    """What each setup or verify command may use."""

    cpu_seconds: int = Field(default=900, gt=0, le=86_400)
    """CPU seconds per process."""

    memory_mb: int = Field(default=4096, ge=64, le=262_144)
    """Memory of the whole sandbox, in MiB."""

    wall_seconds: int = Field(default=900, gt=0, le=86_400)
    """Wall-clock time of each command."""


class Cache(ConfigModel):
    """What setup produces that later tasks of the repository reuse instead of setting up."""

    paths: list[PathGlob] = []
    """Paths setup makes (for example `.venv`, `node_modules`), relative to the root: cached
    after a successful setup, restored into later tasks' clones, never committed."""

    key: list[PathGlob] = []
    """Files whose content decides whether the cache still fits (lock files, manifests):
    with the setup commands they make the cache key, so a change to one sets up anew."""


class Environment(ConfigModel):
    """How each task's clone is made ready, in the sandbox, before the agent runs."""

    setup: list[ShellLine] = []
    """Commands run in order at the repository's root (with /bin/sh -c); the first that
    fails ends the run as `setup_failed`, with its output. None: no setup."""

    cache: Cache = Cache()
    """What setup produces that later tasks reuse."""

    allow_hosts: list[HostPattern] = []
    """Hosts setup may reach through Bosun's egress proxy (`pypi.org`, `*.npmjs.org`,
    `host:port`); everything else is refused and named. The agent never has network."""

    secrets: list[EnvName] = []
    """Environment variables of Bosun's process given to setup, by name; nothing else of
    Bosun's environment reaches setup, and nothing at all reaches the agent."""

    path: list[PathGlob] = []
    """Directories (relative to the root) put first on PATH for the agent's commands and
    verification, such as `.venv/bin` or `node_modules/.bin`."""

    limits: CommandLimits = CommandLimits()
    """What each setup command may use."""

    @model_validator(mode="after")
    def _cache_needs_setup(self) -> Self:
        if self.cache.paths and not self.setup:
            raise located(
                ("cache", "paths"),
                "cache_without_setup",
                "caches what setup produces, and there is no setup",
            )
        return self


class Verify(ConfigModel):
    """The project's own checks, run by Bosun in the sandbox once the agent has finished."""

    commands: list[ShellLine] = []
    """Commands run in order at the repository's root (tests, linters); each must exit 0
    for the change to be pushed as ready. A task's own `verify` replaces these."""

    limits: CommandLimits = CommandLimits()
    """What each verify command may use."""


class Retry(ConfigModel):
    """How a failed run is tried again."""

    attempts: int = Field(default=1, ge=0, le=10)
    """Retries after the first attempt (1: two attempts in all)."""

    backoff_seconds: int = Field(default=60, ge=0, le=86_400)
    """Wait before the first retry."""

    backoff_multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    """Each later retry waits this many times longer than the one before it."""


class Stuck(ConfigModel):
    """When a run that makes no progress is stopped as stuck (and then handled as a failure).

    Each check is off when unset."""

    repeated_tool_calls: int | None = Field(default=3, ge=2, le=100)
    """The agent made the same tool call (same tool, same arguments) this many times in a row."""

    steps_without_change: int | None = Field(default=20, ge=1, le=1000)
    """This many model turns in a row left the worktree exactly as it was."""

    silent_seconds: int | None = Field(default=600, ge=1, le=86_400)
    """No model turn finished for this long (a hung tool or model call)."""


class Escalate(ConfigModel):
    """How a task that failed is handed to people."""

    tier: Name | None = None
    """Try once more on this tier (by its name under `models.tiers`) before handing over;
    unset: hand over at once."""

    label: str = Field(default="bosun/needs-human", min_length=1, max_length=50)
    """Label added to the issue."""

    mention: list[Mention] = []
    """GitHub users (`login`) or teams (`org/team-slug`) mentioned in the status comment."""


class Failure(ConfigModel):
    """What happens when a run fails: retries, then one final action."""

    retry: Retry = Retry()
    """Retries before the final action."""

    stuck: Stuck = Stuck()
    """When a run that makes no progress counts as failed."""

    then: Literal["escalate", "abandon", "rollback"] = "escalate"
    """After the last retry: `escalate` (one more run on `escalate.tier` if set, then hand
    to people), `abandon` (fail the task, release its locks, keep its branch), `rollback`
    (fail the task, close its pull request, delete its branch; on a person's pull request,
    revert what Bosun pushed instead)."""

    escalate: Escalate = Escalate()
    """How to hand over when `then` is escalate."""

    keep: Literal["draft_pr", "branch", "nothing"] = "draft_pr"
    """What a failed run's change leaves behind, when it made one and broke no rule: a
    draft pull request that says why it is not ready, the branch alone, or nothing. A
    retry starts from what was kept. `then: rollback` takes it back all the same."""


class Team(ConfigModel):
    """A team: who belongs to it and which repositories it owns, for quotas and reports."""

    members: list[Mention] = []
    """GitHub users (`login`) or GitHub teams (`org/team-slug`)."""

    repos: list[RepoRef] = []
    """Repositories of the team: `owner/name`, or `name` within the organisation."""


class Policy(ConfigModel):
    """`.bosun/policy.yaml`: who may trigger which agents, on which models, within what budget."""

    version: Literal[1]
    """The policy format version."""

    triggers: Triggers = Triggers()
    """Who may start tasks, and how."""

    agents: dict[Name, Agent] = Field(json_schema_extra=_NAMED_ONLY)
    """Agents that tasks may name, by name."""

    models: Models
    """Model tiers, the default tier and routing rules."""

    budgets: Budgets = Budgets()
    """Spending limits, in US dollars."""

    concurrency: Concurrency = Concurrency()
    """How many tasks may run at once."""

    locks: Locks = Locks()
    """Locks a running task holds besides its branch lock."""
    protected_paths: list[PathGlob] = [".bosun/**", ".github/workflows/**"]
    """Path globs no agent may change; a run that touches one fails before it is pushed."""

    review: Review = Review()
    """Approvals an agent's pull request needs, and whether Bosun merges it."""

    failure: Failure = Failure()
    """Retries and the final action when a run fails."""

    environment: Environment = Environment()
    """How each task's clone is set up before the agent runs: commands, cache, network."""

    verify: Verify = Verify()
    """The project's checks, run after the agent; their results decide the check run."""
    teams: dict[Name, Team] = Field(default={}, json_schema_extra=_NAMED_ONLY)
    """Teams by name, for team budgets, team quotas and cost reports."""

    @model_validator(mode="after")
    def _names_resolve(self) -> Self:
        tier = self.failure.escalate.tier
        if tier is not None and tier not in self.models.tiers:
            raise located(
                ("failure", "escalate", "tier"),
                "unknown_tier",
                "'{value}' is not a tier (tiers: {tiers})",
                value=tier,
                tiers=", ".join(self.models.tiers),
            )
        for team in self.budgets.per_team_month_usd:
            if team not in self.teams:
                raise located(
                    ("budgets", "per_team_month_usd", team),
                    "unknown_team",
                    "'{value}' is not a team (teams: {teams})",
                    value=team,
                    teams=", ".join(self.teams) or "none",
                )
        return self


def route(
    policy: Policy,
    *,
    task_type: str,
    labels: Sequence[str],
    paths: Sequence[str],
    issue_chars: int,
    task_tier: str | None,
) -> str:
    """The tier of a task: the first routing rule it matches, else `task_tier`, else the default."""
    for rule in policy.models.routing:
        if _route_matches(
            rule.when, task_type=task_type, labels=labels, paths=paths, issue_chars=issue_chars
        ):
            return rule.tier
    return task_tier or policy.models.default_tier


def _route_matches(
    when: RouteWhen,
    *,
    task_type: str,
    labels: Sequence[str],
    paths: Sequence[str],
    issue_chars: int,
) -> bool:
    if when.task_types and task_type not in when.task_types:
        return False
    if when.labels and not set(labels) & set(when.labels):
        return False
    if when.paths and not any(matches(path, glob) for path in paths for glob in when.paths):
        return False
    return when.max_issue_chars is None or issue_chars <= when.max_issue_chars


class TaskSpec(ConfigModel):
    """`.bosun/tasks/<name>.yaml`: one kind of task, queued by the label `agent:<name>`."""

    description: str = Field(min_length=1)
    """What the task does, in a sentence, for people choosing which label to add."""

    agent: Name
    """The agent, by its name under `agents` in the policy."""

    prompt: str = Field(min_length=1)
    """A Jinja template of the agent's instructions. Variables: `issue.title`, `issue.body`
    (both given as quoted, untrusted text), `issue.number`, `repo` (owner/name)."""

    task_type: Name = "general"
    """The kind of work (for example bugfix, tests, docs), for routing and cost reports."""

    tier: Name | None = None
    """The model tier, by its name under `models.tiers`; the policy's default_tier if unset."""

    scope: list[PathGlob] = Field(default=["**"], min_length=1)
    """Path globs the task may change; two running tasks never claim overlapping paths."""

    budget_usd: Usd | None = None
    """The most this task may spend, at most the policy's budgets.per_task_usd."""

    runs_on: dict[SelectorKey, SelectorValue] = {}
    """A selector: labels a worker must carry to run this task (for example
    `sandbox: bubblewrap`); any worker when empty."""

    depends_on: list[Name] = []
    """Tasks (by name, under `.bosun/tasks/`) whose pull request for the same issue must be
    merged before this task runs, so that it starts from a base branch with their change;
    until then it waits. Every one must exist, and no cycles."""

    verify: list[ShellLine] | None = None
    """This task's checks, instead of the policy's `verify.commands` ([] runs none)."""

    @field_validator("prompt")
    @classmethod
    def _prompt_is_a_template(cls, value: str) -> str:
        problem = template_problem(value)
        if problem is None:
            return value
        context: dict[str, Any] = {"reason": problem.message}
        if problem.line is not None:
            context["value_line"] = problem.line
        raise PydanticCustomError("template", "{reason}", context)
