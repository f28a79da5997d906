"""The layout keeps its promises: imports point one way, and each folder keeps to its concern.

Read from the source with `ast`, so that an import inside a function or under
`TYPE_CHECKING` counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "sandbox")
# What the pure rules may not reach: every edge (HTTP, database, processes) and every use case.
IO_PACKAGES = (
    "bot.store",
    "bot.github",
    "bot.intake",
    "bot.execution",
    "bot.handlers",
    "bot.tasks",
    "bot.web",
    "bot.demo",
    "bot.llm",
    "bot.scheduling",
    "bot.app",
    "sandbox",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def graph() -> dict[str, frozenset[str]]:
    """Every module of bot/ and sandbox/, and the modules of both it imports."""
    modules = {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    return {name: frozenset(_imports(name, path, modules)) for name, path in modules.items()}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from bot.core import dependencies` imports the module bot.core.dependencies;
            # `from bot.store import Store`, the package's own names.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [n for n in names if n in modules] or [node.module]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                yield target


def cycles(edges: Mapping[str, frozenset[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back() -> None:
    """No import cycles anywhere, lazy and type-checking imports included."""
    assert cycles(graph()) == []


def test_the_sandbox_never_imports_the_service() -> None:
    """sandbox/ can run on its own (a Kubernetes Job, another host)."""
    offenders = {
        module: sorted(target for target in targets if target.startswith("bot"))
        for module, targets in graph().items()
        if module.startswith("sandbox")
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}


def test_no_handler_imports_another() -> None:
    """Handlers share use cases through bot/tasks/, never through each other."""
    handlers = [module for module in graph() if module.startswith("bot.handlers.")]
    offenders = {
        module: sorted(t for t in graph()[module] if t.startswith("bot.handlers"))
        for module in handlers
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}


def test_the_pure_rules_reach_no_edge() -> None:
    """bot/core/ is plain data and functions: no store, no GitHub, no processes."""
    offenders = {
        module: sorted(t for t in targets if t.startswith(IO_PACKAGES))
        for module, targets in graph().items()
        if module.startswith("bot.core")
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a loop through three modules is reported, whole."""
    loop = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert cycles(loop) == [["a", "b", "c"]]
