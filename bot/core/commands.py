"""Exact slash commands in untrusted comment text, parsed into typed values; nothing else acts."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

PREFIX = "/bosun"
MAX_COMMENT_CHARS = 65536  # GitHub's own cap on a comment body
_TASK = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


class Verb(enum.StrEnum):
    RUN = "run"
    RETRY = "retry"
    CANCEL = "cancel"
    STATUS = "status"
    OK_TO_RUN = "ok-to-run"
    ESCALATE = "escalate"
    HELP = "help"


# What each command does, for the help reply: generated from what is registered.
HELP = {
    Verb.RUN: ("<task>", "queue a task defined in `.bosun/tasks/<task>.yaml` for this issue"),
    Verb.RETRY: (
        "",
        "run the last task again; the rest of the comment, and on a pull request the latest "
        "review asking for changes, go to the agent as context",
    ),
    Verb.CANCEL: ("", "stop this issue's queued or running tasks and release their locks"),
    Verb.STATUS: ("", "show the state, cost and attempts of this issue's tasks"),
    Verb.OK_TO_RUN: ("", "release a request held for someone below the trigger permission"),
    Verb.ESCALATE: (
        "",
        "run the last task once more on the policy's escalation tier, or hand it to its owners",
    ),
    Verb.HELP: ("", "show this list"),
}
_TAKES_ARGUMENT = {Verb.RUN}


@dataclass(frozen=True)
class Command:
    verb: Verb
    argument: str | None = None


@dataclass(frozen=True)
class Malformed:
    """A line that starts like a command but is not one: it gets a short help reply."""

    reason: str


Parsed = Command | Malformed


def parse_comment(body: str) -> Parsed | None:
    """The first command line of a comment, or None when the comment holds no command.

    Only a line that is exactly `/bosun <verb> [argument]` counts: not inside a fenced code
    block, not quoted with `>`, not in the middle of a sentence.
    """
    lines = body[:MAX_COMMENT_CHARS].splitlines()
    index = _command_line(lines)
    return None if index is None else parse_line(lines[index].strip())


def without_command(body: str) -> str:
    """The comment's text other than its command line, for the agent as quoted context."""
    lines = body[:MAX_COMMENT_CHARS].splitlines()
    index = _command_line(lines)
    return "\n".join(line for number, line in enumerate(lines) if number != index).strip()


def _command_line(lines: list[str]) -> int | None:
    in_fence = False
    for index, raw in enumerate(lines):
        if _FENCE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        line = raw.strip()
        if line == PREFIX or line.startswith(PREFIX + " "):
            return index
    return None


def parse_line(line: str) -> Parsed:
    words = line.split()
    if len(words) < 2:
        return Malformed("a command needs a verb")
    try:
        verb = Verb(words[1])
    except ValueError:
        return Malformed("unknown command")
    arguments = words[2:]
    if verb in _TAKES_ARGUMENT:
        if len(arguments) != 1 or not _TASK.match(arguments[0]):
            return Malformed(f"`{PREFIX} {verb.value}` takes one task name")
        return Command(verb, arguments[0])
    if arguments:
        return Malformed(f"`{PREFIX} {verb.value}` takes no argument")
    return Command(verb)


def help_text(reason: str | None = None) -> str:
    """The reply to a malformed command (with its reason), or to `/bosun help`."""
    lines = [f"Bosun did not understand that: {reason}.", ""] if reason else []
    lines.append("Bosun's commands, each alone on its own line:")
    for verb, (argument, meaning) in HELP.items():
        usage = f"{PREFIX} {verb.value}" + (f" {argument}" if argument else "")
        lines.append(f"- `{usage}`: {meaning}")
    return "\n".join(lines)
