"""Loading `.bosun/` files: safe YAML, and every problem at its file:line:col."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import pytest

from bot.config.load import (
    POLICY_PATH,
    LoadedConfig,
    Problem,
    default_policy,
    load_config,
    read_checkout,
)
from bot.config.yamlsafe import MAX_BYTES, MAX_VALUES, parse_yaml
from bot.core.errors import ConfigError

POLICY = """\
version: 1
agents:
  coder:
    tools: [read_file, edit_file, run_command]
    commands: [pytest]
models:
  tiers:
    small: [gpt-4o-mini]
    big: [gpt-4.1]
  default_tier: small
budgets:
  per_task_usd: 2.0
"""

TASK = """\
description: Fix the bug.
agent: coder
prompt: |
  Fix issue {{ issue.number }} in {{ repo }}.
  {{ issue.body }}
"""

FIX = ".bosun/tasks/fix.yaml"


def load(files: dict[str, str | bytes]) -> LoadedConfig:
    return load_config({k: v.encode() if isinstance(v, str) else v for k, v in files.items()})


def problems(files: dict[str, str | bytes]) -> list[str]:
    return [str(problem) for problem in load(files).problems]


def policy_problems(text: str | bytes) -> list[str]:
    return problems({POLICY_PATH: text})


def task_problems(text: str | bytes) -> list[str]:
    return problems({POLICY_PATH: POLICY, FIX: text})


def test_valid_config_loads_without_problems() -> None:
    """A valid policy and task load as typed models, the task under its file's name."""
    loaded = load({POLICY_PATH: POLICY, FIX: TASK})
    assert loaded.problems == ()
    assert set(loaded.policy.agents) == {"coder"}
    assert loaded.tasks["fix"].agent == "coder"


def test_missing_policy_means_the_default_policy() -> None:
    """A repository without `.bosun/policy.yaml` runs under the shipped default policy."""
    loaded = load({FIX: TASK})
    assert loaded.problems == ()
    assert loaded.policy == default_policy()
    assert "fix" in loaded.tasks


def test_problem_prints_as_file_line_col() -> None:
    """Problems print as `path:line:col: message`, the format editors and CI annotate."""
    assert str(Problem(FIX, 3, 8, "bad")) == ".bosun/tasks/fix.yaml:3:8: bad"


def test_syntax_error_points_at_the_offending_character() -> None:
    """A YAML syntax error names the line and column where parsing failed."""
    assert policy_problems("version: 1\nagents: [a, b\nmodels: {}\n") == [
        ".bosun/policy.yaml:3:7: invalid YAML: while parsing a flow sequence at 2:9, "
        "did not find expected ',' or ']'"
    ]


def test_wrong_type_points_at_the_key() -> None:
    """A value of the wrong type is reported at its key, with the key's full path."""
    text = POLICY.replace(
        "    commands: [pytest]\n", "    commands: [pytest]\n    limits:\n      max_steps: many\n"
    )
    assert policy_problems(text) == [
        ".bosun/policy.yaml:7:7: agents.coder.limits.max_steps: Input should be a valid "
        "integer, unable to parse string as an integer"
    ]


def test_unknown_key_points_at_the_key_with_a_suggestion() -> None:
    """An unknown key is an error at that key, suggesting the closest known key."""
    assert policy_problems(POLICY + "protectd_paths: []\n") == [
        ".bosun/policy.yaml:13:1: unknown key 'protectd_paths' (did you mean 'protected_paths'?)"
    ]


def test_nested_unknown_key_lists_the_known_keys() -> None:
    """An unknown key inside a section names the section and the keys it accepts."""
    text = POLICY.replace(
        "    commands: [pytest]\n", "    commands: [pytest]\n    sandbox: strict\n"
    )
    assert policy_problems(text) == [
        ".bosun/policy.yaml:6:5: unknown key 'sandbox' in agents.coder (known keys: runtime, "
        "command, tools, commands, network, limits)"
    ]


def test_duplicate_key_is_an_error_at_the_second_occurrence() -> None:
    """A key written twice is an error (plain YAML would silently keep the last)."""
    assert policy_problems(POLICY + "budgets:\n  per_task_usd: 9.0\n") == [
        ".bosun/policy.yaml:13:1: duplicate key 'budgets' (first at 11:1)"
    ]


def test_missing_top_level_key_points_at_the_document() -> None:
    """A missing required key is reported at the mapping that should hold it."""
    text = POLICY.split("models:")[0]
    assert policy_problems(text) == [".bosun/policy.yaml:1:1: missing required key 'models'"]


def test_missing_nested_key_points_at_its_parent_key() -> None:
    """A missing key inside a section is reported at that section's key."""
    text = POLICY.replace("  default_tier: small\n", "")
    assert policy_problems(text) == [
        ".bosun/policy.yaml:6:1: missing required key 'default_tier' in models"
    ]


@pytest.mark.parametrize(
    ("value", "col", "tag"),
    [
        ("!!python/object/apply:os.system [ls]", 10, "!!python/object/apply:os.system"),
        ("!include other.yaml", 10, "!include"),
        ("!!set {a, b}", 10, "!!set"),
    ],
)
def test_tags_beyond_plain_data_are_refused(value: str, col: int, tag: str) -> None:
    """Only plain data loads: Python object tags and custom tags are errors at the tag."""
    assert policy_problems(f"version: {value}\n") == [
        f".bosun/policy.yaml:1:{col}: tag {tag} is not allowed"
    ]


def billion_laughs() -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    names = "abcdefghi"
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_fails_fast() -> None:
    """A billion-laughs alias bomb (9^9 values) is refused, not expanded: what the check
    allocates stays small (an expansion would need gigabytes)."""
    bomb = billion_laughs()
    tracemalloc.start()
    found = policy_problems(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert found == [
        f".bosun/policy.yaml:1:18: alias expansion too large: over {MAX_VALUES} values"
    ]
    assert peak < 64 << 20


def test_aliases_within_bounds_load() -> None:
    """Anchors, aliases and `<<` merge keys work; explicit keys win over merged ones."""
    text = (
        "version: 1\n"
        "agents:\n"
        "  coder: &base\n"
        "    limits: {max_steps: 7, memory_mb: 512}\n"
        "  fast:\n"
        "    <<: *base\n"
        "    network: gateway\n"
        "  other: *base\n"
        "models: {tiers: {small: [m]}, default_tier: small}\n"
    )
    policy = load({POLICY_PATH: text}).policy
    assert policy.agents["fast"].limits.max_steps == 7
    assert policy.agents["fast"].network == "gateway"
    assert policy.agents["other"] == policy.agents["coder"]


def test_error_in_a_merged_value_points_at_its_definition() -> None:
    """A bad value brought in by `<<` is reported where it is written."""
    text = (
        "version: 1\n"
        "base: &base {max_steps: 0}\n"
        "agents: {coder: {limits: {<<: *base}}}\n"
        "models: {tiers: {small: [m]}, default_tier: small}\n"
    )
    assert policy_problems(text)[1] == (
        ".bosun/policy.yaml:2:14: agents.coder.limits.max_steps: Input should be greater than 0"
    )


def test_recursive_alias_is_refused() -> None:
    """An alias inside its own anchor is an error, not an endless structure."""
    assert policy_problems("version: &v [*v]\n") == [
        ".bosun/policy.yaml:1:10: recursive alias: a value cannot contain itself"
    ]


def test_file_over_one_mib_is_refused_before_parsing() -> None:
    """Files over 1 MiB are refused without being parsed."""
    huge = b"version: 1\n" + b"# padding\n" * (MAX_BYTES // 10)
    assert policy_problems(huge) == [
        ".bosun/policy.yaml:1:1: file is over the 1 MiB limit; refused"
    ]


def test_non_utf8_bytes_point_at_their_line_and_column() -> None:
    """Bytes that are not UTF-8 are an error at their line and column."""
    raw = "version: 1\nlabel: \u00e9t\u00e9 ".encode() + b"\xff\n"
    assert policy_problems(raw) == [
        ".bosun/policy.yaml:2:12: file is not UTF-8: invalid byte 0xff at offset 24"
    ]


def test_control_characters_are_refused_at_their_position() -> None:
    """Control characters YAML forbids are an error at their line and column."""
    assert policy_problems("version: 1\nx: a\x07b\n") == [
        ".bosun/policy.yaml:2:5: character U+0007 is not allowed in YAML"
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_files_are_errors(text: str) -> None:
    """An empty policy or task file is an error, not silently the defaults."""
    expected = "1:1: file is empty: expected a mapping of keys"
    assert policy_problems(text) == [f"{POLICY_PATH}:{expected}"]
    assert task_problems(text) == [f"{FIX}:{expected}"]


def test_top_level_must_be_a_mapping() -> None:
    """A file whose top level is a list or a scalar is an error."""
    assert task_problems("- a\n- b\n") == [
        f"{FIX}:1:1: expected a mapping of keys at the top level, not a list"
    ]


def test_bad_template_points_at_its_line_inside_the_yaml() -> None:
    """A Jinja syntax error in a prompt is reported at the YAML line of the template line."""
    text = TASK.replace("  {{ issue.body }}\n", "  {% for %}\n  {{ issue.body }}\n")
    assert task_problems(text) == [
        f"{FIX}:5:3: prompt: template syntax error: Expected an expression, "
        "got 'end of statement block'"
    ]


def test_unknown_template_variable_points_at_its_line() -> None:
    """A prompt that uses an unknown variable is an error at the line that uses it."""
    text = TASK.replace("{{ issue.body }}", "{{ isue.body }}")
    assert task_problems(text) == [
        f"{FIX}:5:3: prompt: unknown variable 'isue' (known: issue, repo)"
    ]


def test_template_error_in_a_quoted_prompt_points_at_the_prompt() -> None:
    """In a quoted or folded prompt, whose lines YAML joins, errors point at the prompt."""
    text = 'description: d\nagent: coder\nprompt: "Hi {{ issue.titel }}"\n'
    assert task_problems(text) == [
        f"{FIX}:3:9: prompt: unknown field issue.titel (known: issue.title, issue.body, "
        "issue.number)"
    ]


def test_task_naming_an_unknown_agent_points_at_its_agent_key() -> None:
    """A task must name an agent of the policy; the error is at the task's `agent:` key."""
    assert task_problems(TASK.replace("agent: coder", "agent: robot")) == [
        f"{FIX}:2:1: agent: 'robot' is not an agent of .bosun/policy.yaml (agents: coder)"
    ]


def test_task_budget_above_policy_points_at_its_budget_key() -> None:
    """A task may not budget more than the policy's per-task ceiling."""
    assert task_problems(TASK + "budget_usd: 5\n") == [
        f"{FIX}:6:1: budget_usd: 5 is above the per_task_usd of .bosun/policy.yaml (2)"
    ]


def test_task_naming_an_unknown_tier_points_at_its_tier_key() -> None:
    """A task's tier must be a tier of the policy."""
    assert task_problems("tier: huge\n" + TASK) == [
        f"{FIX}:1:1: tier: 'huge' is not a tier of .bosun/policy.yaml (tiers: small, big)"
    ]


def test_default_tier_must_be_a_tier() -> None:
    """`models.default_tier` must name one of `models.tiers`; the error is at that key."""
    assert policy_problems(POLICY.replace("default_tier: small", "default_tier: tiny")) == [
        ".bosun/policy.yaml:10:3: models.default_tier: 'tiny' is not a tier (tiers: small, big)"
    ]


def test_external_agent_without_command_points_at_the_agent() -> None:
    """An external agent needs `command`; the error is at the agent's key."""
    text = POLICY.replace("  coder:\n", "  aider:\n    runtime: external\n  coder:\n")
    assert policy_problems(text) == [
        ".bosun/policy.yaml:3:3: agents.aider.command: required when runtime is external"
    ]


def test_invalid_agent_name_points_at_the_name() -> None:
    """Agent names follow the task-name rule, and a bad one is reported at the name."""
    text = POLICY.replace("  coder:\n", "  Coder_1:\n    tools: []\n  coder:\n")
    assert policy_problems(text) == [
        ".bosun/policy.yaml:3:3: agents: 'Coder_1' is not a valid name: use lowercase "
        "letters, digits and dashes, starting with a letter or digit, at most 63 characters"
    ]


def test_broken_task_is_absent_and_others_load() -> None:
    """One broken task file does not stop the other tasks from loading."""
    loaded = load({POLICY_PATH: POLICY, FIX: TASK, ".bosun/tasks/broken.yaml": "description: [\n"})
    assert set(loaded.tasks) == {"fix"}
    assert [problem.path for problem in loaded.problems] == [".bosun/tasks/broken.yaml"]


def test_broken_policy_falls_back_to_the_default_without_noise() -> None:
    """A broken policy yields the default policy and its own problems, not the tasks'."""
    loaded = load({POLICY_PATH: "version: 2\n", FIX: TASK.replace("agent: coder", "agent: custom")})
    assert loaded.policy == default_policy()
    assert {problem.path for problem in loaded.problems} == {POLICY_PATH}
    assert loaded.tasks == {}


def test_task_file_names_must_be_task_names() -> None:
    """A task's name is its file name, which must be usable in a label."""
    assert problems({".bosun/tasks/Fix_Bug.yaml": TASK}) == [
        ".bosun/tasks/Fix_Bug.yaml:1:1: 'Fix_Bug' is not a task name: use lowercase letters, "
        "digits and dashes, starting with a letter or digit, at most 63 characters"
    ]


def test_the_same_task_in_yaml_and_yml_is_an_error() -> None:
    """`fix.yaml` and `fix.yml` together are ambiguous; the second is refused."""
    loaded = load({FIX: TASK, ".bosun/tasks/fix.yml": TASK})
    assert [str(problem) for problem in loaded.problems] == [
        ".bosun/tasks/fix.yml:1:1: task 'fix' is defined twice (.yaml and .yml)"
    ]
    assert set(loaded.tasks) == {"fix"}
    broken_first = load({FIX: "description: [\n", ".bosun/tasks/fix.yml": TASK})
    assert [problem.path for problem in broken_first.problems] == [FIX, ".bosun/tasks/fix.yml"]
    assert broken_first.tasks == {}


def test_other_files_under_bosun_are_ignored() -> None:
    """Files that are neither the policy nor `tasks/*.yaml` are not read as config."""
    loaded = load(
        {
            ".bosun/README.md": "# notes",
            ".bosun/tasks/drafts/x.yaml": "not: [valid",
            ".bosun/tasks/notes.txt": "{",
            FIX: TASK,
        }
    )
    assert loaded.problems == ()
    assert set(loaded.tasks) == {"fix"}


def test_keys_are_read_as_written() -> None:
    """Keys such as `on` or `no` stay text; YAML 1.1 would make them booleans."""
    document = parse_yaml("x.yaml", b"on: 1\nno: 2\n")
    assert document.data == {"on": 1, "no": 2}


def test_several_problems_are_all_reported_in_order() -> None:
    """Every problem in a file is reported, sorted by line."""
    text = POLICY.replace("version: 1", "version: 2").replace(
        "per_task_usd: 2.0", "per_task_usd: -1"
    )
    assert policy_problems(text) == [
        ".bosun/policy.yaml:1:1: version: Input should be 1",
        ".bosun/policy.yaml:12:3: budgets.per_task_usd: Input should be greater than 0",
    ]


def test_parse_yaml_raises_config_error_with_position() -> None:
    """Safe YAML failures are `ConfigError`s that carry the path, line and column."""
    with pytest.raises(ConfigError) as caught:
        parse_yaml("x.yaml", b"a: 1\na: 2\n")
    assert (caught.value.path, caught.value.line, caught.value.col) == ("x.yaml", 2, 1)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_read_checkout_collects_policy_and_tasks(tmp_path: Path) -> None:
    """`read_checkout` reads the policy and task files by repository-relative path."""
    write(tmp_path / ".bosun/policy.yaml", POLICY)
    write(tmp_path / ".bosun/tasks/fix.yaml", TASK)
    write(tmp_path / ".bosun/tasks/readme.md", "x")
    write(tmp_path / "src/app.py", "x")
    assert read_checkout(tmp_path) == {POLICY_PATH: POLICY.encode(), FIX: TASK.encode()}


def test_read_checkout_follows_symlinks_inside_the_checkout(tmp_path: Path) -> None:
    """A task file may be a symlink to another file of the same checkout."""
    write(tmp_path / "shared/fix.yaml", TASK)
    (tmp_path / ".bosun/tasks").mkdir(parents=True)
    (tmp_path / ".bosun/tasks/fix.yaml").symlink_to("../../shared/fix.yaml")
    assert read_checkout(tmp_path) == {FIX: TASK.encode()}


def test_read_checkout_refuses_symlinks_leaving_the_checkout(tmp_path: Path) -> None:
    """A symlink out of the checkout is refused: lint must not read the host's files."""
    outside = tmp_path / "outside.yaml"
    write(outside, POLICY)
    checkout = tmp_path / "repo"
    (checkout / ".bosun").mkdir(parents=True)
    (checkout / ".bosun/policy.yaml").symlink_to(outside)
    with pytest.raises(ConfigError) as caught:
        read_checkout(checkout)
    assert str(caught.value) == ".bosun/policy.yaml:1:1: symlink leads outside the checkout"


def test_deep_nesting_is_refused() -> None:
    """Nesting deeper than any config needs is an error, not a crash."""
    assert policy_problems("version: " + "[" * 100 + "]" * 100 + "\n") == [
        ".bosun/policy.yaml:1:74: nesting too deep: over 64 levels"
    ]


def test_too_many_values_is_refused() -> None:
    """A document with more values than any config needs is refused."""
    text = "version: [" + ", ".join(["1"] * MAX_VALUES) + "]\n"
    assert policy_problems(text)[0].endswith(f"too many values: over {MAX_VALUES}")


def test_merge_sources_apply_in_order_and_explicit_keys_win() -> None:
    """With `<<: [*a, *b]`, keys written in place win, then `a`'s, then `b`'s."""
    document = parse_yaml(
        "x.yaml",
        b"a: &a {x: 1, y: 1}\nb: &b {x: 2, y: 2, z: 2}\nm:\n  <<: [*a, *b]\n  y: 3\n",
    )
    assert isinstance(document.data, dict)
    assert document.data["m"] == {"x": 1, "z": 2, "y": 3}
    assert document.position(("m", "x")).line == 1
    assert document.position(("m", "z")).line == 2
    assert document.position(("m", "y")).line == 5


def test_file_of_ten_mib_is_refused_fast() -> None:
    """A 10 MiB policy file is refused at once, before any parsing: not even decoded, as the
    memory it takes shows (decoding alone would take another 10 MiB)."""
    huge = b"version: 1\n" + b"a" * (10 << 20)
    tracemalloc.start()
    found = policy_problems(huge)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1 << 20
    assert found == [".bosun/policy.yaml:1:1: file is over the 1 MiB limit; refused"]


def test_error_of_a_model_level_check_points_at_the_nested_key() -> None:
    """A routing rule naming an unknown tier is reported at that rule's `tier` key."""
    text = POLICY.replace(
        "  default_tier: small\n",
        "  default_tier: small\n  routing:\n    - when: {task_types: [docs]}\n      tier: huge\n",
    )
    assert policy_problems(text) == [
        ".bosun/policy.yaml:13:7: models.routing[0].tier: 'huge' is not a tier (tiers: small, big)"
    ]


def test_unknown_escalation_tier_points_at_its_key() -> None:
    """`failure.escalate.tier` naming no tier is reported at that key."""
    text = POLICY + "failure:\n  escalate:\n    tier: huge\n"
    assert policy_problems(text) == [
        ".bosun/policy.yaml:15:5: failure.escalate.tier: 'huge' is not a tier (tiers: small, big)"
    ]


def with_deps(*deps: str) -> str:
    return TASK + "depends_on:\n" + "".join(f"  - {dep}\n" for dep in deps)


def test_dependency_on_a_task_that_does_not_exist_points_at_the_entry() -> None:
    """Each `depends_on` entry must name a task file; the task is not loaded otherwise."""
    loaded = load({POLICY_PATH: POLICY, FIX: with_deps("docs", "nope")})
    assert [str(problem) for problem in loaded.problems] == [
        f"{FIX}:7:5: depends_on[0]: 'docs' is not a task (tasks: fix)",
        f"{FIX}:8:5: depends_on[1]: 'nope' is not a task (tasks: fix)",
    ]
    assert "fix" not in loaded.tasks


def test_dependency_cycle_points_at_the_entry_closing_it() -> None:
    """Tasks that depend on each other in a cycle are errors and none of them loads."""
    loaded = load(
        {
            POLICY_PATH: POLICY,
            ".bosun/tasks/a.yaml": with_deps("b"),
            ".bosun/tasks/b.yaml": with_deps("a"),
            ".bosun/tasks/c.yaml": with_deps("a"),
            ".bosun/tasks/d.yaml": with_deps("d"),
        }
    )
    assert [str(problem) for problem in loaded.problems] == [
        ".bosun/tasks/b.yaml:7:5: depends_on[0]: 'a' closes a cycle: a → b → a",
        ".bosun/tasks/d.yaml:7:5: depends_on[0]: 'd' closes a cycle: d → d",
    ]
    assert set(loaded.tasks) == {"c"}


def test_dependencies_without_cycles_load() -> None:
    """A chain of dependencies loads with every task in it."""
    loaded = load(
        {POLICY_PATH: POLICY, ".bosun/tasks/a.yaml": with_deps("b"), ".bosun/tasks/b.yaml": TASK}
    )
    assert loaded.problems == ()
    assert loaded.tasks["a"].depends_on == ["b"]
