"""`bosun policy explain` and `bosun lint --org`: the effective policy and the org's ceilings."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]

ORG = """\
version: 1
agents:
  coder: {}
models:
  tiers: {small: [gpt-4o-mini]}
  default_tier: small
budgets:
  per_task_usd: 1.0
"""

REPO = """\
version: 1
agents:
  coder: {}
models:
  tiers: {small: [gpt-4o-mini]}
  default_tier: small
budgets:
  per_task_usd: 3.0
"""


def checkout(root: Path, policy: str) -> Path:
    (root / ".bosun").mkdir(parents=True)
    (root / ".bosun/policy.yaml").write_text(policy, encoding="utf-8")
    return root


def test_explain_prints_each_key_with_its_origin(tmp_path: Path) -> None:
    """Each key of the effective policy is one line naming where its value came from."""
    repo = checkout(tmp_path / "repo", REPO.replace("3.0", "0.5"))
    org = checkout(tmp_path / "org", ORG)
    result = CliRunner().invoke(main, ["policy", "explain", str(repo), "--org", str(org)])
    assert result.exit_code == 0, result.output
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    assert lines["budgets.per_task_usd"].split()[1:] == ["0.5", "(repo)"]
    assert lines["models.default_tier"].split()[1:] == ["small", "(repo)"]
    assert lines["review.required_approvals"].split()[1:] == ["1", "(default)"]
    assert len(lines) == len(result.stdout.splitlines())


def test_explain_shows_the_org_value_where_the_repo_would_loosen_it(tmp_path: Path) -> None:
    """A value above the org's ceiling shows the org's value and the problem naming both files."""
    repo = checkout(tmp_path / "repo", REPO)
    org_file = tmp_path / "org.yaml"
    org_file.write_text(ORG, encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "explain", str(repo), "--org", str(org_file)])
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("budgets.per_task"))
    assert line.split()[1:] == ["1.0", "(org)"]
    assert result.stderr == (
        ".bosun/policy.yaml:8:3: budgets.per_task_usd: 3.0 is above the org's 1.0 "
        f"(org ceiling: {org_file.as_posix()}:8)\n"
    )


def test_explain_without_org_or_repo_policy_is_the_default(tmp_path: Path) -> None:
    """With no policy anywhere, every value is the shipped default's."""
    (tmp_path / ".bosun").mkdir()
    result = CliRunner().invoke(main, ["policy", "explain", str(tmp_path)])
    assert result.exit_code == 0
    assert all(line.endswith("(default)") for line in result.stdout.splitlines())


def test_lint_with_org_names_both_files(tmp_path: Path) -> None:
    """`bosun lint --org` reports a loosened ceiling at the repo's key and the org's line."""
    repo = checkout(tmp_path / "repo", REPO)
    org = checkout(tmp_path / "org", ORG)
    result = CliRunner().invoke(main, ["lint", str(repo), "--org", str(org)])
    assert result.exit_code == 1
    assert result.stdout == (
        ".bosun/policy.yaml:8:3: budgets.per_task_usd: 3.0 is above the org's 1.0 "
        f"(org ceiling: {(org / '.bosun/policy.yaml').as_posix()}:8)\n"
    )


def test_lint_with_a_broken_org_file_reports_it_at_its_path(tmp_path: Path) -> None:
    """Problems in the org's file are reported at the org path given."""
    repo = checkout(tmp_path / "repo", REPO)
    org_file = tmp_path / "org.yaml"
    org_file.write_text("version: 1\nagents: {}\nmodels: {}\nbogus: 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["lint", str(repo), "--org", str(org_file)])
    assert result.exit_code == 1
    assert f"{org_file.as_posix()}:4:1: unknown key 'bogus'" in result.stdout


def test_lint_org_without_policy_file_is_a_problem(tmp_path: Path) -> None:
    """An org checkout without `.bosun/policy.yaml` is reported, not silently skipped."""
    repo = checkout(tmp_path / "repo", REPO)
    (tmp_path / "org").mkdir()
    result = CliRunner().invoke(main, ["lint", str(repo), "--org", str(tmp_path / "org")])
    assert result.exit_code == 1
    assert "no org policy file here" in result.stdout


def test_examples_lint_clean_under_themselves_as_org_policy() -> None:
    """The sample policy is within its own ceilings."""
    examples = ROOT / "examples"
    result = CliRunner().invoke(main, ["lint", str(examples), "--org", str(examples)])
    assert result.exit_code == 0, result.output
