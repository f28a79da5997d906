"""`bosun lint PATH`: exit 0 when `.bosun/` is valid, 1 with file:line:col problems, 2 on usage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.config.lint import lint_checkout
from bot.config.load import Problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_examples_lint_clean() -> None:
    """The shipped sample `.bosun/` config is valid."""
    result = CliRunner().invoke(main, ["lint", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_installed_command_lints_examples() -> None:
    """The installed `bosun lint` works as a pre-commit hook or CI step would run it."""
    bosun = Path(sys.executable).parent / "bosun"
    result = subprocess.run(
        [str(bosun), "lint", "examples"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stderr


def test_broken_file_exits_1_with_file_line_col(tmp_path: Path) -> None:
    """A problem prints as `file:line:col: message`, relative to the checkout, and exits 1."""
    write(
        tmp_path / ".bosun/tasks/fix.yaml",
        "description: Fix.\nagent: coder\nprompt: |\n  {% if %}\n",
    )
    result = CliRunner().invoke(main, ["lint", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == (
        ".bosun/tasks/fix.yaml:4:3: prompt: template syntax error: Expected an expression, "
        "got 'end of statement block'\n"
    )
    assert "1 problem(s) found" in result.stderr


def test_nonexistent_path_exits_2(tmp_path: Path) -> None:
    """A path that does not exist is a usage error."""
    result = CliRunner().invoke(main, ["lint", str(tmp_path / "nowhere")])
    assert result.exit_code == 2


def test_checkout_without_bosun_directory_is_a_problem(tmp_path: Path) -> None:
    """Linting a directory without `.bosun/` fails rather than passing vacuously."""
    result = CliRunner().invoke(main, ["lint", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == f".bosun:0:0: no .bosun/ directory in {tmp_path}\n"


def test_empty_bosun_directory_is_valid(tmp_path: Path) -> None:
    """An empty `.bosun/` means the default policy and no tasks: nothing to fix."""
    (tmp_path / ".bosun").mkdir()
    assert lint_checkout(tmp_path) == []


def test_problems_come_sorted_by_file_and_line(tmp_path: Path) -> None:
    """Problems are listed by file, then line, then column."""
    write(tmp_path / ".bosun/tasks/b.yaml", "description: x\nagent: coder\nprompt: x\nextra: 1\n")
    write(tmp_path / ".bosun/tasks/a.yaml", "nope: 1\ndescription: x\n")
    write(
        tmp_path / ".bosun/policy.yaml",
        "version: 1\nagents: {}\nmodels: {tiers: {s: [m]}, default_tier: s}\n",
    )
    found = lint_checkout(tmp_path)
    assert [(p.path, p.line, p.col) for p in found] == [
        (".bosun/tasks/a.yaml", 1, 1),
        (".bosun/tasks/a.yaml", 1, 1),
        (".bosun/tasks/a.yaml", 1, 1),
        (".bosun/tasks/b.yaml", 4, 1),
    ]
    assert found == sorted(found)


def test_symlink_out_of_the_checkout_is_a_problem(tmp_path: Path) -> None:
    """Lint refuses to follow a `.bosun/` symlink that leaves the checkout."""
    write(tmp_path / "secret.yaml", "version: 1\n")
    checkout = tmp_path / "repo"
    (checkout / ".bosun").mkdir(parents=True)
    (checkout / ".bosun/policy.yaml").symlink_to(tmp_path / "secret.yaml")
    assert lint_checkout(checkout) == [
        Problem(".bosun/policy.yaml", 1, 1, "symlink leads outside the checkout")
    ]
