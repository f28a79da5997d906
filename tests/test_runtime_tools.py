"""The built-in runtime's tools: confined to the worktree, out of .git, commands only as allowed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sandbox.backends import BubblewrapBackend, Limits
from sandbox.runtime.tools import (
    COMMAND_OUTPUT_CHARS,
    READ_MAX_FILE_BYTES,
    TOOL_NAMES,
    WRITE_MAX_BYTES,
    Toolbox,
    ToolOutcome,
    tool_schemas,
)

FILE_TOOLS = ("list_files", "read_file", "write_file", "edit_file")


@pytest.fixture
def toolbox(worktree: Path, bubblewrap: BubblewrapBackend, short_limits: Limits) -> Toolbox:
    return Toolbox(
        worktree=worktree,
        backend=bubblewrap,
        tools=TOOL_NAMES,
        commands=["cat", "pwd", "seq"],
        limits=short_limits,
    )


@pytest.fixture
def outside(searchable_dir: Path) -> Path:
    """A directory beside the worktree, holding a file no tool may read or write."""
    path = searchable_dir / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("host secret\n")
    return path


async def call(toolbox: Toolbox, name: str, **arguments: object) -> ToolOutcome:
    return await toolbox.call(name, json.dumps(arguments))


async def test_a_written_file_reads_back_and_is_recorded_as_changed(toolbox: Toolbox) -> None:
    """write_file creates the file (and its directories); read_file returns exactly that text."""
    written = await call(toolbox, "write_file", path="src/pkg/new.py", content="x = 1\ny = 2\n")
    read = await call(toolbox, "read_file", path="src/pkg/new.py")

    assert written.ok, written.text
    assert read == ToolOutcome(text="x = 1\ny = 2\n", ok=True)
    assert (toolbox.root / "src" / "pkg" / "new.py").read_text() == "x = 1\ny = 2\n"
    assert toolbox.changed == ["src/pkg/new.py"]


async def test_read_file_pages_through_long_files_by_lines(toolbox: Toolbox) -> None:
    """A long file is read in pages of lines, and the result says where the next page starts."""
    (toolbox.root / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))

    page = await call(toolbox, "read_file", path="long.txt", offset=3, limit=2)

    assert page.ok
    assert page.text == "line 3\nline 4\n\n[lines 3-4 of 10; read on with offset=5]"


async def test_absolute_paths_are_refused(toolbox: Toolbox, outside: Path) -> None:
    """A path must be relative to the repository root; an absolute one is refused outright."""
    read = await call(toolbox, "read_file", path=str(outside / "secret.txt"))
    write = await call(toolbox, "write_file", path=str(outside / "planted.txt"), content="x")

    assert not read.ok and "absolute" in read.text and "host secret" not in read.text
    assert not write.ok and "absolute" in write.text
    assert not (outside / "planted.txt").exists()
    assert toolbox.changed == []


async def test_dot_dot_cannot_leave_the_worktree(toolbox: Toolbox, outside: Path) -> None:
    """`..` that climbs out of the repository is refused; within it, it is just a path."""
    read = await call(toolbox, "read_file", path="../outside/secret.txt")
    write = await call(toolbox, "write_file", path="src/../../outside/planted.txt", content="x")
    inside = await call(toolbox, "read_file", path="src/../README.md")

    assert not read.ok and "outside the repository" in read.text
    assert not write.ok and "outside the repository" in write.text
    assert not (outside / "planted.txt").exists()
    assert inside == ToolOutcome(text="hello\n", ok=True)


async def test_symbolic_links_out_of_the_worktree_are_refused(
    toolbox: Toolbox, outside: Path
) -> None:
    """A link planted in the repository cannot make a tool read or write a file outside it."""
    (toolbox.root / "leak.txt").symlink_to(outside / "secret.txt")
    (toolbox.root / "away").symlink_to(outside)

    outcomes = [
        await call(toolbox, "read_file", path="leak.txt"),
        await call(toolbox, "write_file", path="leak.txt", content="overwritten"),
        await call(toolbox, "edit_file", path="leak.txt", old="host", new="guest"),
        await call(toolbox, "write_file", path="away/planted.txt", content="x"),
        await call(toolbox, "list_files", path="away"),
    ]

    for outcome in outcomes:
        assert not outcome.ok and "symbolic link" in outcome.text, outcome.text
    assert (outside / "secret.txt").read_text() == "host secret\n"
    assert sorted(path.name for path in outside.iterdir()) == ["secret.txt"]
    assert toolbox.changed == []


async def test_symbolic_links_within_the_worktree_lead_to_their_target(toolbox: Toolbox) -> None:
    """A link to a file of the repository works; the change is recorded under the real path."""
    (toolbox.root / "docs").mkdir()
    (toolbox.root / "docs" / "readme.md").symlink_to("../README.md")

    read = await call(toolbox, "read_file", path="docs/readme.md")
    edit = await call(toolbox, "edit_file", path="docs/readme.md", old="hello", new="hi")

    assert read == ToolOutcome(text="hello\n", ok=True)
    assert edit.ok, edit.text
    assert (toolbox.root / "README.md").read_text() == "hi\n"
    assert (toolbox.root / "docs" / "readme.md").is_symlink()
    assert toolbox.changed == ["README.md"]


async def test_git_metadata_is_off_limits(toolbox: Toolbox) -> None:
    """Nothing under .git can be listed, read or written, directly or through a link."""
    (toolbox.root / "gitdir").symlink_to(".git")
    hook = toolbox.root / ".git" / "hooks" / "pre-commit"

    outcomes = [
        await call(toolbox, "read_file", path=".git/config"),
        await call(toolbox, "write_file", path=".git/hooks/pre-commit", content="#!/bin/sh\n"),
        await call(toolbox, "read_file", path="gitdir/config"),
        await call(toolbox, "write_file", path="gitdir/hooks/pre-commit", content="#!/bin/sh\n"),
        await call(toolbox, "list_files", path=".git"),
        await call(toolbox, "read_file", path="src/../.GIT/config"),
    ]
    listing = await call(toolbox, "list_files")

    for outcome in outcomes:
        assert not outcome.ok and ".git" in outcome.text, outcome.text
        assert "from-the-host" not in outcome.text
    assert not hook.exists()
    assert listing.ok and ".git/" not in listing.text.splitlines()
    assert "README.md" in listing.text.splitlines()


async def test_list_files_walks_the_tree_breadth_first(toolbox: Toolbox) -> None:
    """list_files shows the top level first, directories with a slash, links with their target."""
    (toolbox.root / "src" / "pkg").mkdir(parents=True)
    (toolbox.root / "src" / "pkg" / "mod.py").write_text("")
    (toolbox.root / "src" / "app.py").write_text("")
    (toolbox.root / "alias.md").symlink_to("README.md")

    listing = await call(toolbox, "list_files", path=".")

    assert listing.text.splitlines() == [
        "README.md",
        "alias.md -> README.md",
        "src/",
        "src/app.py",
        "src/pkg/",
        "src/pkg/mod.py",
    ]


async def test_edit_file_needs_exactly_one_match(toolbox: Toolbox) -> None:
    """edit_file replaces text that occurs once; missing or repeated text leaves the file as is."""
    path = toolbox.root / "app.py"
    path.write_text("a = 1\na = 1\nb = 2\n")

    repeated = await call(toolbox, "edit_file", path="app.py", old="a = 1", new="a = 3")
    missing = await call(toolbox, "edit_file", path="app.py", old="c = 3", new="c = 4")
    unchanged = path.read_text()
    unique = await call(toolbox, "edit_file", path="app.py", old="b = 2", new="b = 5")

    assert not repeated.ok and "occurs 2 times" in repeated.text
    assert not missing.ok and "not found" in missing.text
    assert unchanged == "a = 1\na = 1\nb = 2\n"
    assert unique.ok, unique.text
    assert path.read_text() == "a = 1\na = 1\nb = 5\n"
    assert toolbox.changed == ["app.py"]


async def test_malformed_calls_come_back_as_errors(toolbox: Toolbox) -> None:
    """Bad JSON, missing or unknown arguments and unknown tools are errors the model can read."""
    outcomes = {
        "not json": await toolbox.call("read_file", "{not json"),
        "not an object": await toolbox.call("read_file", '["README.md"]'),
        "missing": await toolbox.call("write_file", '{"path": "x.txt"}'),
        "unknown key": await toolbox.call("read_file", '{"path": "README.md", "mode": "rb"}'),
        "wrong type": await toolbox.call("read_file", '{"path": 7}'),
        "unknown tool": await toolbox.call("delete_file", '{"path": "README.md"}'),
    }

    for label, outcome in outcomes.items():
        assert not outcome.ok, label
        assert outcome.text.startswith("error: "), label
    assert "not valid JSON" in outcomes["not json"].text
    assert "no tool 'delete_file'" in outcomes["unknown tool"].text
    assert (toolbox.root / "README.md").read_text() == "hello\n"


async def test_a_tool_the_agent_was_not_given_is_refused(
    worktree: Path, bubblewrap: BubblewrapBackend, short_limits: Limits
) -> None:
    """An agent without write tools cannot write, whatever the model asks for."""
    readonly = Toolbox(
        worktree=worktree,
        backend=bubblewrap,
        tools=["list_files", "read_file"],
        commands=[],
        limits=short_limits,
    )

    outcome = await readonly.call("write_file", '{"path": "x.txt", "content": "x"}')

    assert not outcome.ok and "no tool 'write_file'" in outcome.text
    assert not (worktree / "x.txt").exists()
    assert [schema["function"]["name"] for schema in readonly.schemas] == [
        "list_files",
        "read_file",
    ]


async def test_reads_and_writes_are_size_limited(toolbox: Toolbox) -> None:
    """A write over the limit is refused, and so is reading a file too large to send a model."""
    with (toolbox.root / "big.bin").open("wb") as big:
        big.truncate(READ_MAX_FILE_BYTES + 1)

    write = await call(toolbox, "write_file", path="huge.txt", content="x" * (WRITE_MAX_BYTES + 1))
    read = await call(toolbox, "read_file", path="big.bin")

    assert not write.ok and str(WRITE_MAX_BYTES) in write.text
    assert not (toolbox.root / "huge.txt").exists()
    assert not read.ok and str(READ_MAX_FILE_BYTES) in read.text


async def test_special_files_are_refused_without_blocking(toolbox: Toolbox) -> None:
    """A FIFO planted in the worktree is refused at once instead of hanging the host."""
    os.mkfifo(toolbox.root / "pipe")

    read = await call(toolbox, "read_file", path="pipe")
    write = await call(toolbox, "write_file", path="pipe", content="x")

    assert not read.ok and "not a regular file" in read.text
    assert not write.ok


async def test_binary_files_are_not_read_as_text(toolbox: Toolbox) -> None:
    """read_file refuses binary files rather than sending the model garbage."""
    (toolbox.root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")

    outcome = await call(toolbox, "read_file", path="image.png")

    assert not outcome.ok and "binary" in outcome.text


async def test_commands_not_on_the_agents_list_never_run(toolbox: Toolbox) -> None:
    """run_command starts only listed programs, by name: no shell, no other program, no path."""
    refused = [
        await call(toolbox, "run_command", argv=["touch", "marker"]),
        await call(toolbox, "run_command", argv=["sh", "-c", "touch marker"]),
        await call(toolbox, "run_command", argv=["./cat", "README.md"]),
        await call(toolbox, "run_command", argv=["/workspace/cat", "README.md"]),
        await call(toolbox, "run_command", argv=[]),
    ]

    for outcome in refused:
        assert not outcome.ok and outcome.text.startswith("error: "), outcome.text
    assert "not an allowed program (allowed: cat, pwd, seq)" in refused[0].text
    assert "not an allowed program" in refused[1].text
    assert "by name" in refused[2].text and "by name" in refused[3].text
    assert not (toolbox.root / "marker").exists()


async def test_an_allowed_command_runs_inside_the_sandbox_and_its_output_returns(
    toolbox: Toolbox,
) -> None:
    """An allowed program runs in bubblewrap, in the worktree mounted at /workspace."""
    where = await call(toolbox, "run_command", argv=["pwd"])
    shown = await call(toolbox, "run_command", argv=["/usr/bin/cat", "README.md"])

    assert where.ok and where.text.startswith("exit code 0")
    assert "--- stdout ---\n/workspace\n" in where.text
    assert shown.ok and "--- stdout ---\nhello\n" in shown.text
    assert toolbox.changed == []


async def test_long_command_output_keeps_its_end(toolbox: Toolbox) -> None:
    """The model gets the last part of a long output, where test summaries are, marked as cut."""
    outcome = await call(toolbox, "run_command", argv=["seq", "1", "100000"])

    stdout = outcome.text.split("--- stdout ---\n", 1)[1]
    assert outcome.ok
    assert stdout.startswith("[earlier output cut]\n")
    assert stdout.endswith("99999\n100000\n")
    assert len(stdout) <= COMMAND_OUTPUT_CHARS + len("[earlier output cut]\n")


async def test_a_failing_command_reports_its_exit_code(toolbox: Toolbox) -> None:
    """A command that fails is a normal result with its exit code and stderr, not a crash."""
    outcome = await call(toolbox, "run_command", argv=["cat", "missing.txt"])

    assert outcome.ok
    assert outcome.text.startswith("exit code 1")
    assert "--- stderr ---" in outcome.text and "missing.txt" in outcome.text


def test_schemas_describe_the_enabled_tools_for_the_model() -> None:
    """Each enabled tool has an OpenAI-style schema; run_command names the allowed programs."""
    schemas = tool_schemas(TOOL_NAMES, commands=["pytest", "ruff"])

    assert [schema["function"]["name"] for schema in schemas] == list(TOOL_NAMES)
    for schema in schemas:
        assert schema["type"] == "function"
        assert schema["function"]["parameters"]["type"] == "object"
        assert schema["function"]["parameters"]["additionalProperties"] is False
    assert "Allowed programs: pytest, ruff." in schemas[-1]["function"]["description"]
    assert tool_schemas(FILE_TOOLS)[0]["function"]["parameters"]["required"] == []
    with pytest.raises(ValueError, match="unknown tools"):
        tool_schemas(["shell"])
