"""`.bosun/` files into a policy and tasks, with every problem at its `file:line:col`."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.config.models import Policy, TaskSpec, is_name
from bot.config.yamlsafe import MAX_BYTES, Document, parse_yaml
from bot.core.errors import ConfigError

POLICY_PATH = ".bosun/policy.yaml"
TASKS_DIR = ".bosun/tasks"
TASK_SUFFIXES = (".yaml", ".yml")
DEFAULT_POLICY = "default.yaml"

_M = TypeVar("_M", bound=BaseModel)
_KINDS: dict[type, str] = {
    dict: "a mapping",
    list: "a list",
    str: "text",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


@dataclass(frozen=True, order=True)
class Problem:
    """Something wrong in a `.bosun/` file, at a 1-based line and column (0:0: no file)."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    @classmethod
    def from_error(cls, exc: ConfigError) -> Problem:
        return cls(exc.path, exc.line, exc.col, exc.message)


@dataclass(frozen=True)
class LoadedConfig:
    """A policy and the tasks valid under it, with every problem found on the way.

    A broken policy yields the default policy; a broken task is absent from `tasks`.
    """

    policy: Policy
    tasks: Mapping[str, TaskSpec]
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Parsed(Generic[_M]):
    """A validated model and the YAML document it came from, for positions of its keys."""

    model: _M
    document: Document


@functools.cache
def default_policy() -> Policy:
    """The policy shipped with Bosun, used where a repository has no `.bosun/policy.yaml`."""
    path = f"bot/config/{DEFAULT_POLICY}"
    raw = resources.files("bot.config").joinpath(DEFAULT_POLICY).read_bytes()
    parsed = parse_file(path, raw, Policy)
    if isinstance(parsed, list):
        first = parsed[0]
        raise ConfigError(first.message, path=first.path, line=first.line, col=first.col)
    return parsed.model


def load_config(files: Mapping[str, bytes]) -> LoadedConfig:
    """Validate `.bosun/` files, given by repository-relative path; other paths are ignored."""
    problems: list[Problem] = []
    policy = default_policy()
    policy_name = "the default policy"
    if POLICY_PATH in files:
        parsed = parse_file(POLICY_PATH, files[POLICY_PATH], Policy)
        if isinstance(parsed, list):
            problems.extend(parsed)
        else:
            policy, policy_name = parsed.model, POLICY_PATH
    # Tasks checked against a fallback policy would only repeat the policy's own problem.
    tasks, task_problems = load_tasks(files, policy, policy_name=policy_name, report=not problems)
    return LoadedConfig(policy, tasks, tuple(sorted([*problems, *task_problems])))


def load_tasks(
    files: Mapping[str, bytes], policy: Policy, *, policy_name: str, report: bool = True
) -> tuple[dict[str, TaskSpec], list[Problem]]:
    """The tasks of `files` valid under `policy`, and the problems found in them.

    With `report` false, tasks that ask for what `policy` lacks are dropped silently.
    """
    problems: list[Problem] = []
    parsed: dict[str, Parsed[TaskSpec]] = {}
    seen: set[str] = set()
    for name, path in _task_paths(files):
        task = _load_task(name, path, files[path], seen, problems)
        if task is None:
            continue
        mismatches = _mismatches(task, policy, policy_name)
        if report:
            problems.extend(mismatches)
        if not mismatches:
            parsed[name] = task
    broken = _dependency_problems(parsed, seen)
    problems.extend(problem for problem, _ in broken)
    dropped = {name for _, names in broken for name in names}
    tasks = {name: task.model for name, task in parsed.items() if name not in dropped}
    return tasks, problems


def _dependency_problems(
    parsed: Mapping[str, Parsed[TaskSpec]], known: set[str]
) -> list[tuple[Problem, set[str]]]:
    """Each `depends_on` entry naming no task file, or closing a cycle, with the tasks it breaks."""
    found: list[tuple[Problem, set[str]]] = []
    for name, task in parsed.items():
        for index, dependency in enumerate(task.model.depends_on):
            if dependency not in known:
                tasks = ", ".join(sorted(known))
                message = f"depends_on[{index}]: '{dependency}' is not a task (tasks: {tasks})"
                found.append((_at(task.document, ("depends_on", index), message), {name}))
    for name, index, cycle in _cycles(parsed):
        path = " → ".join(cycle)
        message = f"depends_on[{index}]: '{cycle[-1]}' closes a cycle: {path}"
        found.append((_at(parsed[name].document, ("depends_on", index), message), set(cycle)))
    return found


def _cycles(parsed: Mapping[str, Parsed[TaskSpec]]) -> list[tuple[str, int, list[str]]]:
    """Every dependency edge that leads back into the chain being walked: (task, index, chain)."""
    done: set[str] = set()
    found: list[tuple[str, int, list[str]]] = []

    def walk(name: str, chain: list[str]) -> None:
        chain.append(name)
        for index, dependency in enumerate(parsed[name].model.depends_on):
            if dependency in chain:
                found.append((name, index, [*chain[chain.index(dependency) :], dependency]))
            elif dependency in parsed and dependency not in done:
                walk(dependency, chain)
        chain.pop()
        done.add(name)

    for name in sorted(parsed):
        if name not in done:
            walk(name, [])
    return found


def _task_paths(files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(files):
        pure = PurePosixPath(path)
        if str(pure.parent) == TASKS_DIR and pure.suffix in TASK_SUFFIXES:
            found.append((pure.stem, path))
    return found


def _load_task(
    name: str, path: str, raw: bytes, seen: set[str], problems: list[Problem]
) -> Parsed[TaskSpec] | None:
    if not is_name(name):
        message = (
            f"'{name}' is not a task name: use lowercase letters, digits and dashes, "
            "starting with a letter or digit, at most 63 characters"
        )
        problems.append(Problem(path, 1, 1, message))
        return None
    if name in seen:
        problems.append(Problem(path, 1, 1, f"task '{name}' is defined twice (.yaml and .yml)"))
        return None
    seen.add(name)
    parsed = parse_file(path, raw, TaskSpec)
    if isinstance(parsed, list):
        problems.extend(parsed)
        return None
    return parsed


def _mismatches(task: Parsed[TaskSpec], policy: Policy, policy_name: str) -> list[Problem]:
    """Where a task asks for what its policy does not offer."""
    spec, found = task.model, []
    if spec.agent not in policy.agents:
        agents = ", ".join(policy.agents) or "none"
        message = f"agent: '{spec.agent}' is not an agent of {policy_name} (agents: {agents})"
        found.append(_at(task.document, ("agent",), message))
    if spec.tier is not None and spec.tier not in policy.models.tiers:
        tiers = ", ".join(policy.models.tiers)
        message = f"tier: '{spec.tier}' is not a tier of {policy_name} (tiers: {tiers})"
        found.append(_at(task.document, ("tier",), message))
    ceiling = policy.budgets.per_task_usd
    if spec.budget_usd is not None and spec.budget_usd > ceiling:
        message = (
            f"budget_usd: {spec.budget_usd:g} is above the per_task_usd of {policy_name} "
            f"({ceiling:g})"
        )
        found.append(_at(task.document, ("budget_usd",), message))
    return found


def _at(document: Document, loc: Sequence[str | int], message: str) -> Problem:
    where = document.position(loc)
    return Problem(document.path, where.line, where.col, message)


def parse_file(path: str, raw: bytes, model: type[_M]) -> Parsed[_M] | list[Problem]:
    """One `.bosun/` file validated as `model`, or its problems."""
    try:
        document = parse_yaml(path, raw)
    except ConfigError as exc:
        return [Problem.from_error(exc)]
    if not isinstance(document.data, dict):
        kind = _KINDS.get(type(document.data), "a value")
        return [_at(document, (), f"expected a mapping of keys at the top level, not {kind}")]
    try:
        return Parsed(model.model_validate(document.data), document)
    except ValidationError as exc:
        return [_problem(document, error, model) for error in exc.errors(include_url=False)]


def _problem(document: Document, error: ErrorDetails, model: type[BaseModel]) -> Problem:
    """Place a pydantic error: at its key, a missing key's parent, or a line of a template."""
    context = error.get("ctx") or {}
    at = context.get("at")
    if isinstance(at, tuple):
        # A model-level check (see `models.located`) names the nested key it is about.
        error = {**error, "loc": (*error["loc"], *at)}
    loc = error["loc"]
    value_line = context.get("value_line")
    if isinstance(value_line, int):
        where = document.value_line_position(loc, value_line)
    else:
        where = document.position(loc)
    return Problem(document.path, where.line, where.col, _message(error, model))


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = list(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return f"missing required key '{loc[-1]}'{_within(loc[:-1])}"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return f"unknown key '{key}'{_within(loc[:-1])}{_hint(key, _keys_at(model, loc[:-1]))}"
    if loc and loc[-1] == "[key]":
        loc = loc[:-2]
    where = _dotted(loc)
    return f"{where}: {error['msg']}" if where else error["msg"]


def _within(loc: Sequence[str | int]) -> str:
    return f" in {_dotted(loc)}" if loc else ""


def _dotted(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _hint(key: str, known: Sequence[str]) -> str:
    if not known:
        return ""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known keys: {', '.join(known)})"


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the model accepts at `loc`, for suggestions."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _step(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is dict and len(args) == 2:
        return args[1]
    if get_origin(annotation) is list and args:
        return args[0]
    if len(args) == 1:
        return _step(args[0], part)
    return None


def read_checkout(root: Path) -> dict[str, bytes]:
    """The policy and task files of the checkout at `root`, by repository-relative path.

    Raises `ConfigError` for a file that is not a regular file or whose symlinks lead
    outside the checkout. Files are read up to one byte past the size limit.
    """
    base = root.resolve()
    return {_relative(root, path): _read_inside(base, root, path) for path in _candidates(root)}


def _candidates(root: Path) -> list[Path]:
    bosun = root / ".bosun"
    policy = bosun / "policy.yaml"
    found = [policy] if policy.is_symlink() or policy.exists() else []
    tasks = bosun / "tasks"
    if tasks.is_dir():
        found += sorted(path for path in tasks.iterdir() if path.suffix in TASK_SUFFIXES)
    return found


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_inside(base: Path, root: Path, path: Path) -> bytes:
    relative = _relative(root, path)
    target = path.resolve()
    if not target.is_relative_to(base):
        raise ConfigError("symlink leads outside the checkout", path=relative, line=1, col=1)
    if not target.is_file():
        raise ConfigError("not a regular file", path=relative, line=1, col=1)
    try:
        with target.open("rb") as handle:
            return handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=relative, line=1, col=1) from exc
