"""Org ceilings: a repository's policy tightens the org's policy and never loosens it."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config.effective import Effective, effective_config
from bot.config.load import POLICY_PATH, default_policy
from bot.config.models import Permission, Policy

ORG = """\
version: 1
triggers:
  min_permission: write
  ok_to_run_permission: maintain
agents:
  coder:
    tools: [read_file, edit_file, run_command]
    commands: [pytest]
    network: gateway
    limits: {memory_mb: 2048}
models:
  tiers:
    small: [gpt-4o-mini]
    big: [gpt-4.1]
  default_tier: small
budgets:
  per_task_usd: 2.0
concurrency:
  max_running_per_repo: 3
locks:
  path_claims: true
protected_paths: [".bosun/**", "secrets/**"]
review:
  required_approvals: 2
  counts: maintain
failure:
  retry: {attempts: 2}
teams:
  web: {members: [octocat]}
"""

REPO_BASE = """\
version: 1
agents:
  coder:
    tools: [read_file, edit_file, run_command]
    commands: [pytest]
models:
  tiers:
    small: [gpt-4o-mini]
  default_tier: small
"""

ORG_FILE = ".github/.bosun/policy.yaml"


def merged(repo: str | None, org: str | None = ORG) -> Effective:
    repo_files = {} if repo is None else {POLICY_PATH: repo.encode()}
    org_files = None if org is None else {POLICY_PATH: org.encode()}
    return effective_config(repo_files=repo_files, org_files=org_files)


def messages(found: Effective) -> list[str]:
    return [str(problem) for problem in found.problems]


def test_without_org_policy_the_repo_policy_applies() -> None:
    """No org policy: the repository's own policy, or the shipped default without one."""
    assert merged(REPO_BASE, org=None).policy.models.tiers == {"small": ["gpt-4o-mini"]}
    alone = merged(None, org=None)
    assert alone.policy == default_policy()
    assert set(alone.origins.values()) == {"default"}


def test_without_repo_policy_the_org_policy_applies() -> None:
    """No repository policy: the org's policy, with its values marked as the org's."""
    found = merged(None)
    assert found.problems == ()
    assert found.policy.review.required_approvals == 2
    assert found.origins["review.required_approvals"] == "org"
    assert found.origins["review.auto_merge"] == "default"


def test_repo_may_lower_a_budget_but_not_raise_it() -> None:
    """A per-task budget above the org's is an error naming both files; the org's applies."""
    assert merged(REPO_BASE + "budgets: {per_task_usd: 1.0}\n").policy.budgets.per_task_usd == 1.0
    found = merged(REPO_BASE + "budgets: {per_task_usd: 5}\n")
    assert messages(found) == [
        ".bosun/policy.yaml:10:11: budgets.per_task_usd: 5.0 is above the org's 2.0 "
        f"(org ceiling: {ORG_FILE}:17)"
    ]
    assert found.policy.budgets.per_task_usd == 2.0
    assert found.origins["budgets.per_task_usd"] == "org"


def test_repo_may_lower_concurrency_but_not_lift_it() -> None:
    """A quota above the org's, or none where the org sets one, cannot loosen it."""
    found = merged(REPO_BASE + "concurrency: {max_running_per_repo: 9, max_running_per_org: 5}\n")
    assert found.policy.concurrency.max_running_per_repo == 3
    assert found.policy.concurrency.max_running_per_org == 5
    assert [problem.line for problem in found.problems] == [10]


def test_repo_may_remove_models_but_not_add_any() -> None:
    """A model the org does not list is an error at that model; the tier keeps the rest."""
    text = REPO_BASE.replace("small: [gpt-4o-mini]", "small: [gpt-4o-mini, o3]")
    found = merged(text)
    assert messages(found) == [
        ".bosun/policy.yaml:8:26: models.tiers.small[1]: model 'o3' is not allowed by the org "
        f"(org ceiling: {ORG_FILE}:13)"
    ]
    assert found.policy.models.tiers == {"small": ["gpt-4o-mini"]}


def test_repo_may_add_protected_paths_but_not_remove_the_orgs() -> None:
    """The org's protected paths always apply; a repository list leaving one out is an error."""
    found = merged(REPO_BASE + 'protected_paths: [".bosun/**", "db/**"]\n')
    assert found.policy.protected_paths == [".bosun/**", "secrets/**", "db/**"]
    assert messages(found) == [
        ".bosun/policy.yaml:10:1: protected_paths: leaves out the org's secrets/**; they still "
        f"apply (org ceiling: {ORG_FILE}:22)"
    ]


def test_repo_may_raise_permissions_but_not_lower_them() -> None:
    """Trigger and release permissions may rise above the org's, never fall below."""
    raised = merged(
        REPO_BASE + "triggers: {min_permission: maintain, ok_to_run_permission: admin}\n"
    )
    assert raised.problems == ()
    assert raised.policy.triggers.min_permission is Permission.MAINTAIN
    lowered = merged(REPO_BASE + "triggers: {min_permission: read}\n")
    assert lowered.policy.triggers.min_permission is Permission.WRITE
    assert messages(lowered)[0].startswith(
        ".bosun/policy.yaml:10:12: triggers.min_permission: 'read' is below the org's 'write'"
    )


def test_repo_may_require_more_review_but_not_less() -> None:
    """Approvals and the approver's permission may rise; auto-merge needs the org's consent."""
    found = merged(REPO_BASE + "review: {required_approvals: 1, counts: admin, auto_merge: true}\n")
    review = found.policy.review
    assert (review.required_approvals, review.counts, review.auto_merge) == (
        2,
        Permission.ADMIN,
        False,
    )
    assert [problem.col for problem in found.problems] == [10, 48]


def test_the_orgs_merge_method_and_kept_branches_bind_the_repo() -> None:
    """A merge method the org writes is the one used; without one the repo picks. A repo may
    keep its closed pull requests' branches, and may not delete them where the org keeps them."""
    keeps = ORG.replace("counts: maintain\n", "counts: maintain\n  delete_branch_on_close: false\n")
    repo = REPO_BASE + "review: {merge_method: rebase, delete_branch_on_close: true}\n"
    chosen = merged(repo, keeps)
    assert (chosen.policy.review.merge_method, chosen.origins["review.merge_method"]) == (
        "rebase",
        "repo",
    )
    assert chosen.policy.review.delete_branch_on_close is False
    assert messages(chosen) == [
        ".bosun/policy.yaml:10:32: review.delete_branch_on_close: the org keeps the branches of "
        f"closed pull requests (org ceiling: {ORG_FILE}:26)"
    ]

    merges = ORG.replace("counts: maintain\n", "counts: maintain\n  merge_method: merge\n")
    repo = REPO_BASE + "review: {merge_method: squash, delete_branch_on_close: false}\n"
    bound = merged(repo, merges)
    assert bound.policy.review.merge_method == "merge"
    assert bound.policy.review.delete_branch_on_close is False
    assert messages(bound) == [
        ".bosun/policy.yaml:10:10: review.merge_method: 'squash' is not the org's merge method "
        f"'merge' (org ceiling: {ORG_FILE}:26)"
    ]


def test_repo_agent_stays_within_the_orgs_agent() -> None:
    """A repo agent may not widen the network, exceed limits or add tools beyond the org's."""
    text = REPO_BASE.replace(
        "    commands: [pytest]\n",
        "    commands: [pytest, make]\n    limits: {memory_mb: 4096, max_steps: 10}\n",
    )
    found = merged(text)
    agent = found.policy.agents["coder"]
    assert agent.commands == ["pytest"]
    assert agent.limits.memory_mb == 2048
    assert agent.limits.max_steps == 10
    assert [problem.message.split(":")[0] for problem in found.problems] == [
        "agents.coder.commands",
        "agents.coder.limits.memory_mb",
    ]


def test_repo_cannot_add_an_external_command_the_org_does_not_run() -> None:
    """An external agent must run a command one of the org's agents runs; else it is removed."""
    text = REPO_BASE.replace(
        "agents:\n", "agents:\n  ext:\n    runtime: external\n    command: [my-agent]\n"
    )
    found = merged(text)
    assert "ext" not in found.policy.agents
    assert "external command not among the org's agents" in messages(found)[0]


def test_network_wider_than_the_orgs_is_narrowed() -> None:
    """An org agent without network caps the repo's agent of the same name at none."""
    org = ORG.replace("    network: gateway\n", "")
    found = merged(
        REPO_BASE.replace("commands: [pytest]", "commands: [pytest]\n    network: gateway"), org
    )
    assert found.policy.agents["coder"].network == "none"
    assert found.problems[0].message.startswith("agents.coder.network: 'gateway' is wider")


def test_repo_cannot_turn_off_path_claims_or_redefine_org_teams() -> None:
    """Path claims the org turns on stay on; the org's teams are the org's to define."""
    found = merged(REPO_BASE + "locks: {path_claims: false}\nteams:\n  web: {members: [mallory]}\n")
    assert found.policy.locks.path_claims is True
    assert found.policy.teams["web"].members == ["octocat"]
    assert len(found.problems) == 2


def test_repo_may_retry_less_but_not_more() -> None:
    """Retries cost money: a repository may lower the org's attempts, never raise them."""
    assert (
        merged(REPO_BASE + "failure: {retry: {attempts: 0}}\n").policy.failure.retry.attempts == 0
    )
    assert (
        merged(REPO_BASE + "failure: {retry: {attempts: 5}}\n").policy.failure.retry.attempts == 2
    )


def test_problems_of_either_file_carry_through() -> None:
    """A broken org file reports at its own path; tasks are checked against the effective policy."""
    found = merged(REPO_BASE, org="version: 2\n")
    assert any(problem.path == ORG_FILE for problem in found.problems)
    task = b"description: x\nagent: coder\nprompt: x\nbudget_usd: 3\n"
    files = {POLICY_PATH: REPO_BASE.encode(), ".bosun/tasks/fix.yaml": task}
    tasked = effective_config(repo_files=files, org_files={POLICY_PATH: ORG.encode()})
    assert [(problem.path, problem.line) for problem in tasked.problems] == [
        (".bosun/tasks/fix.yaml", 4)
    ]
    assert "fix" not in tasked.tasks


def test_origins_cover_every_key() -> None:
    """Every dotted key of the effective policy says whether org, repo or default set it."""
    found = merged(REPO_BASE + "budgets: {per_task_usd: 1.0}\n")
    assert found.origins["budgets.per_task_usd"] == "repo"
    assert found.origins["models.tiers.small"] == "repo"
    assert found.origins["teams.web.members"] == "org"
    assert found.origins["failure.escalate.label"] == "default"


# -- properties --------------------------------------------------------------------

PERMISSIONS = [permission.value for permission in Permission]
MODEL_NAMES = ["m1", "m2", "m3", "m4"]
GLOBS = ["a/**", "b/**", "c/**"]
TOOLS = ["list_files", "read_file", "write_file", "edit_file", "run_command"]


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """Random valid policies over a small vocabulary, so that org and repo overlap."""
    least = draw(st.sampled_from(PERMISSIONS))
    ok = draw(st.sampled_from(PERMISSIONS[PERMISSIONS.index(least) :]))
    tiers = draw(
        st.dictionaries(
            st.sampled_from(["small", "big"]),
            st.lists(st.sampled_from(MODEL_NAMES), min_size=1, max_size=3, unique=True),
            min_size=1,
        )
    )
    tools = draw(st.lists(st.sampled_from(TOOLS), unique=True))
    agent = {
        "tools": tools,
        "commands": draw(st.lists(st.sampled_from(["pytest", "make"]), unique=True))
        if "run_command" in tools
        else [],
        "network": draw(st.sampled_from(["none", "gateway"])),
        "limits": {"memory_mb": draw(st.integers(64, 4096)), "max_steps": draw(st.integers(1, 99))},
    }
    quota = st.none() | st.integers(1, 20)
    auto_merge = draw(st.booleans())  # and then at least one approval, as the model requires
    return {
        "version": 1,
        "triggers": {"min_permission": least, "ok_to_run_permission": ok},
        "agents": {draw(st.sampled_from(["coder", "writer"])): agent},
        "models": {"tiers": tiers, "default_tier": next(iter(tiers))},
        "budgets": {
            "per_task_usd": draw(st.floats(0.1, 10)),
            "per_repo_month_usd": draw(st.none() | st.floats(1, 500)),
        },
        "concurrency": {"max_running_per_repo": draw(quota), "max_running_per_org": draw(quota)},
        "locks": {"path_claims": draw(st.booleans())},
        "protected_paths": draw(st.lists(st.sampled_from(GLOBS), unique=True)),
        "review": {
            "required_approvals": draw(st.integers(1 if auto_merge else 0, 3)),
            "counts": draw(st.sampled_from(PERMISSIONS)),
            "auto_merge": auto_merge,
            "merge_method": draw(st.sampled_from(["merge", "squash", "rebase"])),
            "delete_branch_on_close": draw(st.booleans()),
        },
        "failure": {"retry": {"attempts": draw(st.integers(0, 3))}},
    }


def at_most(value: float | None, ceiling: float | None) -> bool:
    return ceiling is None or (value is not None and value <= ceiling)


NETWORK = ["none", "gateway"]


@settings(max_examples=150, deadline=None)
@given(org=policies(), repo=policies())
def test_effective_policy_is_never_looser_than_the_org(
    org: dict[str, Any], repo: dict[str, Any]
) -> None:
    """Whatever a repository writes, every ceiling of the org's policy holds."""
    found = merged(yaml.safe_dump(repo), yaml.safe_dump(org))
    ceiling, policy = Policy.model_validate(org), found.policy
    assert policy.budgets.per_task_usd <= ceiling.budgets.per_task_usd
    assert at_most(policy.budgets.per_repo_month_usd, ceiling.budgets.per_repo_month_usd)
    for key in ("max_running_per_repo", "max_running_per_org"):
        assert at_most(getattr(policy.concurrency, key), getattr(ceiling.concurrency, key))
    allowed = {model for models in ceiling.models.tiers.values() for model in models}
    assert {model for models in policy.models.tiers.values() for model in models} <= allowed
    assert set(ceiling.protected_paths) <= set(policy.protected_paths)
    assert policy.triggers.min_permission >= ceiling.triggers.min_permission
    assert policy.triggers.ok_to_run_permission >= ceiling.triggers.ok_to_run_permission
    assert policy.review.required_approvals >= ceiling.review.required_approvals
    assert policy.review.counts >= ceiling.review.counts
    assert policy.review.auto_merge <= ceiling.review.auto_merge
    assert policy.review.merge_method == ceiling.review.merge_method  # the org writes one here
    assert policy.review.delete_branch_on_close <= ceiling.review.delete_branch_on_close
    assert policy.locks.path_claims >= ceiling.locks.path_claims
    assert policy.failure.retry.attempts <= ceiling.failure.retry.attempts
    widest = max(NETWORK.index(agent.network) for agent in ceiling.agents.values())
    most = max(agent.limits.memory_mb for agent in ceiling.agents.values())
    for agent in policy.agents.values():
        assert NETWORK.index(agent.network) <= widest
        assert agent.limits.memory_mb <= most


@settings(max_examples=50, deadline=None)
@given(org=policies())
def test_a_repo_that_copies_the_org_policy_has_no_problems(org: dict[str, Any]) -> None:
    """A repository policy equal to the org's is within every ceiling."""
    text = yaml.safe_dump(org)
    found = merged(text, text)
    assert found.problems == ()
    assert found.policy == Policy.model_validate(org)
