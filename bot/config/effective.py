"""Org ceilings: the org's `.bosun/policy.yaml`, tightened and never loosened by a repo's.

The organisation's `.github` repository may hold `.bosun/policy.yaml`. Its values are
ceilings: a repository's policy may lower a budget, a limit or a quota, remove models and
tiers, add protected paths and raise the permissions it asks for, and nothing else. A
repository value that would loosen a ceiling is a `Problem` naming both files, and the
org's value applies. `docs/policy.md` lists the rule of every key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from bot.config.load import (
    POLICY_PATH,
    Parsed,
    Problem,
    default_policy,
    load_tasks,
    parse_file,
)
from bot.config.models import Agent, Limits, Permission, Policy, TaskSpec

Origin = Literal["org", "repo", "default"]
ORG_POLICY_LABEL = ".github/.bosun/policy.yaml"
"""How messages name the org's policy: the file `.bosun/policy.yaml` of the `.github` repo."""

_NETWORK = ("none", "gateway")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Effective:
    """The policy a repository runs under, its valid tasks, every problem, and value origins.

    `origins` maps every dotted key of `policy` (`budgets.per_task_usd`, `models.tiers.small`)
    to where its value came from: the org's file, the repo's file, or the built-in default.
    """

    policy: Policy
    tasks: Mapping[str, TaskSpec]
    problems: tuple[Problem, ...]
    origins: Mapping[str, Origin]


def effective_config(
    *,
    repo_files: Mapping[str, bytes],
    org_files: Mapping[str, bytes] | None,
    org_label: str = ORG_POLICY_LABEL,
) -> Effective:
    """The effective policy and tasks of a repository under its org's ceilings.

    `repo_files` are the repository's `.bosun/` files and `org_files` the org `.github`
    repository's (only its `.bosun/policy.yaml` counts), by repository-relative path;
    `org_label` names the org's policy file in messages. A broken file contributes its
    problems and is otherwise ignored: a caller that finds a problem in a policy file keeps
    its last good config, as `ConfigProvider` does.
    """
    problems: list[Problem] = []
    org = _parse_policy(org_files or {}, org_label, problems)
    repo = _parse_policy(repo_files, POLICY_PATH, problems)
    clamped: set[str] = set()
    if org is not None and repo is not None:
        merge = _Merge(org, repo, org_label)
        policy = merge.policy()
        problems.extend(merge.problems)
        clamped = merge.clamped
        name = f"the effective policy ({org_label} tightened by {POLICY_PATH})"
    elif org is not None:
        policy, name = org.model, org_label
    elif repo is not None:
        policy, name = repo.model, POLICY_PATH
    else:
        policy, name = default_policy(), "the default policy"
    broken = any(problem.path in {POLICY_PATH, org_label} for problem in problems)
    tasks, task_problems = load_tasks(repo_files, policy, policy_name=name, report=not broken)
    origins = _origins(policy, org=org, repo=repo, clamped=clamped)
    return Effective(policy, tasks, tuple(sorted([*problems, *task_problems])), origins)


def leaves(policy: Policy) -> dict[str, object]:
    """Every dotted key of `policy` and its value as JSON data; lists and empty maps are leaves."""
    return {".".join(path): value for path, value in _leaf_paths(policy).items()}


def _leaf_paths(policy: Policy) -> dict[tuple[str, ...], object]:
    found: dict[tuple[str, ...], object] = {}

    def walk(value: object, path: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, (*path, str(key)))
        else:
            found[path] = value

    walk(policy.model_dump(mode="json"), ())
    return found


def _parse_policy(
    files: Mapping[str, bytes], label: str, problems: list[Problem]
) -> Parsed[Policy] | None:
    if POLICY_PATH not in files:
        return None
    parsed = parse_file(label, files[POLICY_PATH], Policy)
    if isinstance(parsed, list):
        problems.extend(parsed)
        return None
    return parsed


def _origins(
    policy: Policy,
    *,
    org: Parsed[Policy] | None,
    repo: Parsed[Policy] | None,
    clamped: set[str],
) -> dict[str, Origin]:
    """A value clamped to the org's ceiling is the org's; else whichever file wrote it."""
    origins: dict[str, Origin] = {}
    for path in _leaf_paths(policy):
        dotted = ".".join(path)
        if dotted in clamped:
            origins[dotted] = "org"
        elif repo is not None and path in repo.document.positions:
            origins[dotted] = "repo"
        elif org is not None and path in org.document.positions:
            origins[dotted] = "org"
        else:
            origins[dotted] = "default"
    return origins


@dataclass
class _Merge:
    """The org policy tightened by the repo policy, one section at a time."""

    org: Parsed[Policy]
    repo: Parsed[Policy]
    org_label: str
    problems: list[Problem] = field(default_factory=list)
    clamped: set[str] = field(default_factory=set)

    def policy(self) -> Policy:
        org, repo = self.org.model, self.repo.model
        models = self.models()
        data: dict[str, Any] = {
            "version": 1,
            "triggers": self.triggers(),
            "agents": self.agents(),
            "models": models,
            "budgets": self.budgets(),
            "concurrency": {
                key: self.lowest(("concurrency", key), getattr(org.concurrency, key), value)
                for key, value in repo.concurrency.model_dump().items()
            },
            "locks": {"path_claims": self.locks()},
            "protected_paths": self.protected_paths(),
            "review": self.review(),
            "failure": self.failure(models["tiers"]),
            "environment": self.environment(),
            "verify": self.verify(),
            "teams": self.teams(),
        }
        try:
            return Policy.model_validate(data)
        except ValidationError as exc:
            # The rules keep every value valid; should one not, the org's policy stands.
            self.violation((), f"cannot be combined with the org policy: {exc}")
            return org

    # -- reporting ---------------------------------------------------------------

    def written(self, loc: Sequence[str | int]) -> bool:
        return tuple(loc) in self.repo.document.positions

    def violation(self, loc: Sequence[str | int], message: str) -> None:
        """A repo value that loosens the org's: reported at the repo's key, naming the org's."""
        dotted = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        dotted = dotted.lstrip(".")
        where = self.repo.document.position(loc)
        org_where = self.org.document.position(loc)
        text = f"{message} (org ceiling: {self.org_label}:{org_where.line})"
        self.problems.append(
            Problem(POLICY_PATH, where.line, where.col, f"{dotted}: {text}" if dotted else text)
        )
        self.clamped.add(dotted)

    def pick(
        self,
        loc: Sequence[str | int],
        org: _T,
        repo: _T,
        *,
        looser: Callable[[_T, _T], bool],
        message: Callable[[_T, _T], str],
    ) -> _T:
        """The repo's value where it wrote one that is not looser; else the org's."""
        if not self.written(loc):
            return org
        if looser(repo, org):
            self.violation(loc, message(repo, org))
            return org
        return repo

    def lowest(self, loc: Sequence[str | int], org: Any, repo: Any) -> Any:
        """A ceiling where less is tighter and None means unlimited."""
        return self.pick(
            loc,
            org,
            repo,
            looser=lambda r, o: o is not None and (r is None or r > o),
            message=lambda r, o: f"{_show(r)} is above the org's {_show(o)}",
        )

    def highest_permission(
        self, loc: Sequence[str | int], org: Permission, repo: Permission
    ) -> Permission:
        return self.pick(
            loc,
            org,
            repo,
            looser=lambda r, o: r < o,
            message=lambda r, o: f"'{r.value}' is below the org's '{o.value}'",
        )

    # -- sections ----------------------------------------------------------------

    def triggers(self) -> dict[str, Any]:
        org, repo = self.org.model.triggers, self.repo.model.triggers
        prefix = (
            repo.label_prefix if self.written(("triggers", "label_prefix")) else org.label_prefix
        )
        least = self.highest_permission(
            ("triggers", "min_permission"), org.min_permission, repo.min_permission
        )
        ok_to_run = self.highest_permission(
            ("triggers", "ok_to_run_permission"),
            org.ok_to_run_permission,
            repo.ok_to_run_permission,
        )
        return {
            "label_prefix": prefix,
            "min_permission": least,
            "ok_to_run_permission": max(ok_to_run, least),
        }

    def agents(self) -> dict[str, Any]:
        org = self.org.model.agents
        if not self.written(("agents",)):
            return {name: agent.model_dump() for name, agent in org.items()}
        if not org:
            if self.repo.model.agents:
                self.violation(("agents",), "the org allows no agents")
            return {}
        envelope = _envelope(org.values())
        kept: dict[str, Any] = {}
        for name, agent in self.repo.model.agents.items():
            ceiling = _envelope([org[name]]) if name in org else envelope
            fitted = self.agent(name, agent, ceiling)
            if fitted is not None:
                kept[name] = fitted
        return kept

    def agent(self, name: str, agent: Agent, ceiling: _Envelope) -> dict[str, Any] | None:
        """A repo agent cut down to its ceiling; None when its external command is not allowed."""
        loc = ("agents", name)
        if agent.runtime == "external" and tuple(agent.command or ()) not in ceiling.commands_argv:
            self.violation(
                (*loc, "command"), "external command not among the org's agents; agent removed"
            )
            return None
        data = agent.model_dump()
        if _NETWORK.index(agent.network) > _NETWORK.index(ceiling.network):
            self.violation(
                (*loc, "network"), f"'{agent.network}' is wider than the org's '{ceiling.network}'"
            )
            data["network"] = ceiling.network
        data["tools"] = self.subset((*loc, "tools"), agent.tools, ceiling.tools, "tool")
        if "run_command" not in data["tools"]:
            data["commands"] = []
        else:
            data["commands"] = self.subset(
                (*loc, "commands"), agent.commands, ceiling.commands, "command"
            )
        data["limits"] = {
            key: self.limit((*loc, "limits", key), value, ceiling.limits[key])
            for key, value in agent.limits.model_dump().items()
        }
        return data

    def subset(
        self, loc: tuple[str, ...], values: Sequence[str], allowed: set[str], kind: str
    ) -> list[str]:
        extra = [value for value in values if value not in allowed]
        if extra and self.written(loc):
            names = ", ".join(str(value) for value in extra)
            self.violation(loc, f"{kind}(s) {names} not allowed by the org's agents")
        elif extra:
            self.clamped.add(".".join(loc))
        return [value for value in values if value in allowed]

    def limit(self, loc: tuple[str, ...], value: int, ceiling: int) -> int:
        if value <= ceiling:
            return value
        if self.written(loc):
            self.violation(loc, f"{value} is above the org's {ceiling}")
        else:
            # The repo kept a built-in default the org lowered: the org's value, silently.
            self.clamped.add(".".join(loc))
        return ceiling

    def models(self) -> dict[str, Any]:
        org, repo = self.org.model.models, self.repo.model.models
        allowed = {model for models in org.tiers.values() for model in models}
        tiers: dict[str, list[str]] = {}
        if self.written(("models", "tiers")):
            for tier, models in repo.tiers.items():
                for index, model in enumerate(models):
                    if model not in allowed:
                        self.violation(
                            ("models", "tiers", tier, index),
                            f"model '{model}' is not allowed by the org",
                        )
                kept = [model for model in models if model in allowed]
                if kept:
                    tiers[tier] = kept
        if not tiers:
            tiers = dict(org.tiers)
        default = repo.default_tier if self.written(("models", "default_tier")) else None
        if default not in tiers:
            default = org.default_tier if org.default_tier in tiers else next(iter(tiers))
        routing = repo.routing if self.written(("models", "routing")) else org.routing
        return {
            "tiers": tiers,
            "default_tier": default,
            "routing": [rule.model_dump() for rule in routing if rule.tier in tiers],
        }

    def budgets(self) -> dict[str, Any]:
        org, repo = self.org.model.budgets, self.repo.model.budgets
        teams = dict(org.per_team_month_usd)
        if self.written(("budgets", "per_team_month_usd")):
            for team, usd in repo.per_team_month_usd.items():
                loc = ("budgets", "per_team_month_usd", team)
                teams[team] = self.lowest(loc, org.per_team_month_usd.get(team), usd)
        return {
            "per_task_usd": self.lowest(
                ("budgets", "per_task_usd"), org.per_task_usd, repo.per_task_usd
            ),
            "per_team_month_usd": teams,
            "per_repo_month_usd": self.lowest(
                ("budgets", "per_repo_month_usd"), org.per_repo_month_usd, repo.per_repo_month_usd
            ),
        }

    def locks(self) -> bool:
        org, repo = self.org.model.locks.path_claims, self.repo.model.locks.path_claims
        return self.pick(
            ("locks", "path_claims"),
            org,
            repo,
            looser=lambda r, o: o and not r,
            message=lambda r, o: "the org turns path claims on",
        )

    def protected_paths(self) -> list[str]:
        org, repo = self.org.model.protected_paths, self.repo.model.protected_paths
        if not self.written(("protected_paths",)):
            return list(org)
        missing = [glob for glob in org if glob not in repo]
        if missing:
            names = ", ".join(missing)
            self.violation(("protected_paths",), f"leaves out the org's {names}; they still apply")
        return [*org, *(glob for glob in repo if glob not in org)]

    def review(self) -> dict[str, Any]:
        org, repo = self.org.model.review, self.repo.model.review
        return {
            "required_approvals": self.pick(
                ("review", "required_approvals"),
                org.required_approvals,
                repo.required_approvals,
                looser=lambda r, o: r < o,
                message=lambda r, o: f"{r} is below the org's {o}",
            ),
            "counts": self.highest_permission(("review", "counts"), org.counts, repo.counts),
            "auto_merge": self.pick(
                ("review", "auto_merge"),
                org.auto_merge,
                repo.auto_merge,
                looser=lambda r, o: r and not o,
                message=lambda r, o: "the org does not allow auto_merge",
            ),
            "merge_method": self.merge_method(org.merge_method, repo.merge_method),
            # Deleting a branch is something Bosun does: a repo may forbid it, never allow
            # it where the org forbids it.
            "delete_branch_on_close": self.pick(
                ("review", "delete_branch_on_close"),
                org.delete_branch_on_close,
                repo.delete_branch_on_close,
                looser=lambda r, o: r and not o,
                message=lambda r, o: "the org keeps the branches of closed pull requests",
            ),
        }

    def merge_method(self, org: str, repo: str) -> str:
        """The org's merge method where the org writes one (its history rule); else the repo's."""
        loc = ("review", "merge_method")
        if loc not in self.org.document.positions:
            return repo if self.written(loc) else org
        return self.pick(
            loc,
            org,
            repo,
            looser=lambda r, o: r != o,
            message=lambda r, o: f"'{r}' is not the org's merge method '{o}'",
        )

    def failure(self, tiers: Mapping[str, object]) -> dict[str, Any]:
        org, repo = self.org.model.failure, self.repo.model.failure
        chosen = {
            key: (getattr(repo, key) if self.written(("failure", key)) else getattr(org, key))
            for key in ("then", "escalate")
        }
        escalate = chosen["escalate"].model_dump()
        if escalate["tier"] not in tiers:
            escalate["tier"] = None
        retry = repo.retry if self.written(("failure", "retry")) else org.retry
        return {
            "retry": {
                "attempts": self.lowest(
                    ("failure", "retry", "attempts"), org.retry.attempts, retry.attempts
                ),
                "backoff_seconds": retry.backoff_seconds,
                "backoff_multiplier": retry.backoff_multiplier,
            },
            # A lower threshold stops a stuck run sooner: the org's values are ceilings.
            "stuck": {
                key: self.lowest(
                    ("failure", "stuck", key), getattr(org.stuck, key), getattr(repo.stuck, key)
                )
                for key in type(org.stuck).model_fields
            },
            "then": chosen["then"],
            "escalate": escalate,
            "keep": repo.keep if self.written(("failure", "keep")) else org.keep,
        }

    def environment(self) -> dict[str, Any]:
        """The repo's setup, within the hosts and secrets the org allows, if it lists them."""
        org, repo = self.org.model.environment, self.repo.model.environment
        if not self.written(("environment",)):
            return org.model_dump()
        data = repo.model_dump()
        for key, kind in (("allow_hosts", "host"), ("secrets", "secret")):
            if ("environment", key) in self.org.document.positions:
                allowed = getattr(org, key)
                data[key] = self.within(("environment", key), getattr(repo, key), allowed, kind)
        data["limits"] = self.command_limits(("environment",), org.limits, repo.limits)
        return data

    def verify(self) -> dict[str, Any]:
        org, repo = self.org.model.verify, self.repo.model.verify
        commands = repo.commands if self.written(("verify", "commands")) else org.commands
        limits = self.command_limits(("verify",), org.limits, repo.limits)
        return {"commands": list(commands), "limits": limits}

    def within(
        self, loc: tuple[str, ...], values: Sequence[str], allowed: Sequence[str], kind: str
    ) -> list[str]:
        """The values an org list covers (a host pattern covers the hosts it matches)."""
        covered = [value for value in values if any(_covers(rule, value) for rule in allowed)]
        extra = [value for value in values if value not in covered]
        if extra:
            self.violation(loc, f"{kind}(s) {', '.join(extra)} not allowed by the org")
        return covered

    def command_limits(self, section: tuple[str, ...], org: Any, repo: Any) -> dict[str, int]:
        return {
            key: self.limit((*section, "limits", key), value, getattr(org, key))
            for key, value in repo.model_dump().items()
        }

    def teams(self) -> dict[str, Any]:
        org, repo = self.org.model.teams, self.repo.model.teams
        teams = {name: team.model_dump() for name, team in org.items()}
        for name, team in repo.items():
            if name not in org:
                teams[name] = team.model_dump()
            elif team != org[name]:
                self.violation(("teams", name), "the org defines this team; the org's applies")
        return teams


@dataclass(frozen=True)
class _Envelope:
    """The most any of the org's agents may do: a repo agent must stay within it."""

    network: str
    tools: set[str]
    commands: set[str]
    commands_argv: set[tuple[str, ...]]
    limits: dict[str, int]


def _envelope(agents: Iterable[Agent]) -> _Envelope:
    agents = list(agents)
    limits = {key: 0 for key in Limits.model_fields}
    for agent in agents:
        for key, value in agent.limits.model_dump().items():
            limits[key] = max(limits[key], value)
    return _Envelope(
        network=max((agent.network for agent in agents), key=_NETWORK.index, default="none"),
        tools={tool.value for agent in agents for tool in agent.tools},
        commands={command for agent in agents for command in agent.commands},
        commands_argv={tuple(agent.command) for agent in agents if agent.command is not None},
        limits=limits,
    )


def _covers(rule: str, host: str) -> bool:
    """Whether an org's host pattern allows a repo's: the same, or a suffix `*.` allows."""
    if rule == host:
        return True
    if rule.startswith("*."):
        suffix = rule[1:]
        return host.endswith(suffix) and (not host.startswith("*.") or host[1:].endswith(suffix))
    return False


def _show(value: object) -> str:
    if value is None:
        return "unlimited"
    return show_value(value)


def show_value(value: object) -> str:
    """A policy value as people read it: YAML-like flow style, numbers without noise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else f"{value:.1f}"
    if isinstance(value, Permission):
        return value.value
    if isinstance(value, list):
        return "[" + ", ".join(show_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {show_value(item)}" for key, item in value.items()) + "}"
    return str(value)
