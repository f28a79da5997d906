"""The `.github/` files and the `bosun lint` action parse and agree with `.ci/run`; under
GitHub Actions, `bosun lint` speaks in workflow commands that become annotations."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.config.lint import workflow_command
from bot.config.load import Problem

ROOT = Path(__file__).resolve().parents[1]
BROKEN_TASK = "description: Fix.\nagent: coder\nprompt: |\n  {% if %}\n"


def load(relative: str) -> Any:
    return yaml.safe_load((ROOT / relative).read_text(encoding="utf-8"))


def ci_run_test_command() -> str:
    found = re.search(r'^test_command="(.*)"$', (ROOT / ".ci/run").read_text(), re.MULTILINE)
    assert found is not None
    return found.group(1)


def test_the_ci_workflow_runs_what_ci_run_runs() -> None:
    """Same test command string as `.ci/run` (and so the README's), plus ruff and mypy."""
    workflow = load(".github/workflows/ci.yml")
    job = workflow["jobs"]["check"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["services"]["postgres"]["ports"] == ["5432:5432"]
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert ci_run_test_command() in scripts
    assert ci_run_test_command() in (ROOT / "README.md").read_text()
    for command in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert command in scripts
    assert "apt-get install -y -qq bubblewrap" in scripts
    versions = {
        step["uses"].split("@")[0]: step["with"]
        for step in job["steps"]
        if "with" in step and "uses" in step
    }
    assert versions["actions/setup-python"] == {"python-version": "3.11"}
    assert versions["actions/setup-node"] == {"node-version": "20"}


def test_dependabot_watches_pip_npm_and_actions() -> None:
    config = load(".github/dependabot.yml")
    assert config["version"] == 2
    watched = {(entry["package-ecosystem"], entry["directory"]) for entry in config["updates"]}
    assert watched == {("pip", "/"), ("npm", "/tests/contract"), ("github-actions", "/")}


def test_the_action_installs_bosun_from_itself_and_lints() -> None:
    action = load("action.yml")
    assert set(action["inputs"]) == {"path", "org-policy", "python-version"}
    assert action["inputs"]["path"]["default"] == "."
    assert action["inputs"]["org-policy"]["required"] is False
    runs = action["runs"]
    assert runs["using"] == "composite"
    scripts = "\n".join(f"{step.get('run', '')} {step.get('env', {})}" for step in runs["steps"])
    assert "${{ github.action_path }}" in scripts
    assert "lint" in scripts and "--format github" in scripts
    assert all(step.get("shell") == "bash" for step in runs["steps"] if "run" in step)


def test_the_example_workflow_uses_the_action() -> None:
    workflow = load("examples/github-actions-bosun-lint.yml")
    uses = [step.get("uses", "") for step in workflow["jobs"]["lint"]["steps"]]
    assert any(re.fullmatch(r"[\w-]+/bosun@v0", step) for step in uses), uses


def test_lint_prints_workflow_commands_with_format_github(tmp_path: Path) -> None:
    task = tmp_path / ".bosun/tasks/fix.yaml"
    task.parent.mkdir(parents=True)
    task.write_text(BROKEN_TASK, encoding="utf-8")
    result = CliRunner().invoke(main, ["lint", str(tmp_path), "--format", "github"])
    assert result.exit_code == 1
    assert result.stdout == (
        f"::error file={(tmp_path / '.bosun/tasks/fix.yaml').as_posix()},line=4,col=3,"
        "title=bosun lint::prompt: template syntax error: Expected an expression, "
        "got 'end of statement block'\n"
    )


def test_lint_speaks_github_under_github_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GITHUB_ACTIONS=true picks the format; paths are relative to the working directory."""
    task = tmp_path / "repo/.bosun/tasks/fix.yaml"
    task.parent.mkdir(parents=True)
    task.write_text(BROKEN_TASK, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["lint", "repo"], env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    assert result.stdout.startswith("::error file=repo/.bosun/tasks/fix.yaml,line=4,col=3,")
    result = CliRunner().invoke(main, ["lint", str(tmp_path / "repo")], env={"GITHUB_ACTIONS": ""})
    assert result.stdout.startswith(".bosun/tasks/fix.yaml:4:3: ")


def test_workflow_commands_escape_and_place_org_problems(tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    problem = Problem(org.as_posix(), 2, 0, "50% over,\nthe ceiling")
    line = workflow_command(problem, checkout=tmp_path / "repo", org=org, root=tmp_path)
    assert line == "::error file=org.yaml,line=2,title=bosun lint::50%25 over,%0Athe ceiling"
    nowhere = Problem(".bosun", 0, 0, "no .bosun/ directory")
    line = workflow_command(nowhere, checkout=Path("."), org=None, root=tmp_path)
    assert line == "::error file=.bosun,title=bosun lint::no .bosun/ directory"
