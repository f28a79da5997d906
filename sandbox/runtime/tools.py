"""The built-in runtime's tools: file tools confined to the worktree, commands through the backend.

File tools run on the host, so every path is checked here: it must be relative, stay
inside the worktree once symbolic links are resolved, and keep out of `.git`. Files are
then opened one directory at a time without following any symbolic link, so a link
planted by a command cannot redirect the write. Commands run only through the backend,
and only those the agent's policy lists. Every failure becomes a tool result for the
model; nothing here raises into the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sandbox.backends.base import DEFAULT_PATH, Backend, Limits, RunResult, SandboxError

LOG = logging.getLogger("bosun.sandbox.runtime")

TOOL_NAMES = ("list_files", "read_file", "write_file", "edit_file", "run_command")
READ_MAX_FILE_BYTES = 8 * 1024 * 1024
READ_MAX_CHARS = 64_000
READ_DEFAULT_LINES = 2_000
WRITE_MAX_BYTES = 1024 * 1024
LIST_MAX_ENTRIES = 1_000
COMMAND_OUTPUT_CHARS = 8_000
COMMAND_MAX_ARGS = 256

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the agent made must not hang the host.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_SYSTEM_BIN = frozenset(DEFAULT_PATH.split(":"))

_PATH = {"type": "string", "description": "A path relative to the repository root."}
_SCHEMAS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "list_files": (
        "List the files and directories under a directory of the repository, recursively.",
        {"path": {**_PATH, "description": "The directory to list; '.' is the repository root."}},
        (),
    ),
    "read_file": (
        "Read a UTF-8 text file of the repository, by lines.",
        {
            "path": _PATH,
            "offset": {"type": "integer", "minimum": 1, "description": "First line, from 1."},
            "limit": {"type": "integer", "minimum": 1, "description": "How many lines to read."},
        },
        ("path",),
    ),
    "write_file": (
        "Create or replace a text file of the repository with the given content.",
        {"path": _PATH, "content": {"type": "string", "description": "The whole new content."}},
        ("path", "content"),
    ),
    "edit_file": (
        "Replace one exact occurrence of `old` in a file with `new`. `old` must match the "
        "file's text exactly (whitespace included) and occur exactly once.",
        {
            "path": _PATH,
            "old": {"type": "string", "description": "The exact text to replace."},
            "new": {"type": "string", "description": "The replacement text."},
        },
        ("path", "old", "new"),
    ),
    "run_command": (
        "Run a program in the repository root inside the sandbox, without a shell, and get its "
        "exit code and output.",
        {
            "argv": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": 'The program and its arguments, such as ["pytest", "-q"].',
            }
        },
        ("argv",),
    ),
}
_JSON_TYPES: dict[str, Callable[[object], bool]] = {
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "array": lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
}


class ToolError(Exception):
    """A tool call the tool refuses or cannot do; the message goes to the model as the result."""


@dataclass(frozen=True)
class ToolOutcome:
    """The result text the model sees, and whether the call did what it asked."""

    text: str
    ok: bool


def tool_schemas(enabled: Sequence[str], *, commands: Sequence[str] = ()) -> list[dict[str, Any]]:
    """OpenAI-style function schemas of the enabled tools, in the order given.

    `commands` names the programs `run_command` may start, so the model knows them.
    """
    unknown = [name for name in enabled if name not in _SCHEMAS]
    if unknown:
        raise ValueError(f"unknown tools {unknown}: expected some of {list(TOOL_NAMES)}")
    return [_schema(name, commands) for name in dict.fromkeys(enabled)]


def _schema(name: str, commands: Sequence[str]) -> dict[str, Any]:
    description, properties, required = _SCHEMAS[name]
    if name == "run_command":
        allowed = ", ".join(commands) or "none"
        description = f"{description} Allowed programs: {allowed}."
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(required),
                "additionalProperties": False,
            },
        },
    }


class Toolbox:
    """The tools of one agent run over one worktree; `changed` records the files written."""

    def __init__(
        self,
        *,
        worktree: Path,
        backend: Backend,
        tools: Sequence[str],
        commands: Sequence[str],
        limits: Limits,
    ) -> None:
        self.root = Path(os.path.realpath(worktree))
        self.backend = backend
        self.enabled = tuple(dict.fromkeys(tools))
        self.commands = tuple(commands)
        self.limits = limits
        self.schemas = tool_schemas(self.enabled, commands=self.commands)
        self._changed: dict[str, None] = {}

    @property
    def changed(self) -> list[str]:
        """Paths written or edited by the tools, relative to the worktree, in first-write order."""
        return list(self._changed)

    async def call(self, name: str, arguments: str) -> ToolOutcome:
        """Run one tool call; every refusal or failure comes back as an `error: …` result."""
        try:
            text = await self._dispatch(name, arguments)
        except ToolError as exc:
            return ToolOutcome(text=f"error: {exc}", ok=False)
        except SandboxError as exc:
            return ToolOutcome(text=f"error: the sandbox cannot run commands: {exc}", ok=False)
        except OSError as exc:
            return ToolOutcome(text=f"error: {name}: {_os_message(exc)}", ok=False)
        except Exception:
            LOG.exception("tool %s failed unexpectedly", name)
            return ToolOutcome(text=f"error: {name} failed unexpectedly", ok=False)
        return ToolOutcome(text=text, ok=True)

    async def _dispatch(self, name: str, arguments: str) -> str:
        if name not in self.enabled:
            raise ToolError(f"there is no tool {name!r}; the tools are {', '.join(self.enabled)}")
        args = _arguments(name, arguments)
        if name == "run_command":
            return await self.run_command(args["argv"])
        handler: Callable[..., str] = getattr(self, name)
        return await asyncio.to_thread(handler, **args)

    def list_files(self, path: str = ".") -> str:
        """Entries under `path`, breadth first, directories with a trailing `/`."""
        parts = self._resolve(path)
        lines: list[str] = []
        for entry in self._walk(parts):
            if len(lines) == LIST_MAX_ENTRIES:
                lines.append(f"[stopped at {LIST_MAX_ENTRIES} entries; list a subdirectory]")
                break
            lines.append(entry)
        return "\n".join(lines) if lines else f"{path}: empty directory"

    def read_file(self, path: str, offset: int = 1, limit: int = READ_DEFAULT_LINES) -> str:
        """Lines `offset` to `offset + limit - 1` of a text file, capped at `READ_MAX_CHARS`."""
        if offset < 1 or limit < 1:
            raise ToolError("offset and limit count lines from 1")
        parts = self._resolve(path)
        lines = self._read_text(parts, path, READ_MAX_FILE_BYTES).splitlines(keepends=True)
        if not lines:
            return f"{path}: empty file"
        if offset > len(lines):
            raise ToolError(f"{path} has {len(lines)} lines; offset {offset} is past the end")
        chosen: list[str] = []
        size = 0
        for line in lines[offset - 1 : offset - 1 + limit]:
            if size + len(line) > READ_MAX_CHARS and chosen:
                break
            chosen.append(line[:READ_MAX_CHARS])
            size += len(line)
        last = offset + len(chosen) - 1
        text = "".join(chosen)
        if last < len(lines):
            text += f"\n[lines {offset}-{last} of {len(lines)}; read on with offset={last + 1}]"
        return text

    def write_file(self, path: str, content: str) -> str:
        """Create or replace the file at `path`; parent directories are made as needed."""
        data = _encode(content)
        parts = self._resolve(path)
        self._write(parts, data)
        return f"wrote {len(data)} bytes to {self._record(parts)}"

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of `old` in the file with `new`."""
        if not old:
            raise ToolError("old must not be empty; use write_file to create a file")
        parts = self._resolve(path)
        text = self._read_text(parts, path, WRITE_MAX_BYTES)
        count = text.count(old)
        if count == 0:
            raise ToolError(
                f"old text not found in {path}; read the file and copy the exact text, "
                "whitespace and indentation included"
            )
        if count > 1:
            raise ToolError(
                f"old text occurs {count} times in {path}; include more of the surrounding "
                "lines so that it matches exactly once"
            )
        self._write(parts, _encode(text.replace(old, new, 1)))
        return f"edited {self._record(parts)}: replaced 1 occurrence"

    async def run_command(self, argv: list[str]) -> str:
        """Run an allowed program in the worktree through the backend, with the agent's limits."""
        self._check_argv(argv)
        # Nothing of the host leaks in; bytecode caches would only clutter the change.
        env = {"PYTHONDONTWRITEBYTECODE": "1"}
        result = await self.backend.run(argv, cwd=self.root, env=env, limits=self.limits)
        return command_report(result, wall_seconds=self.limits.wall_seconds)

    def _check_argv(self, argv: list[str]) -> None:
        if not argv or len(argv) > COMMAND_MAX_ARGS or any("\0" in arg for arg in argv):
            raise ToolError(f"argv must hold 1 to {COMMAND_MAX_ARGS} arguments without NUL")
        program = argv[0]
        name = PurePosixPath(program).name
        allowed = ", ".join(self.commands) or "none"
        if name not in self.commands:
            raise ToolError(f"{program!r} is not an allowed program (allowed: {allowed})")
        if "/" in program and str(PurePosixPath(program).parent) not in _SYSTEM_BIN:
            # A path could name a program written into the worktree under an allowed name.
            raise ToolError(f"{program!r}: give the program by name, such as {name!r}")

    def _resolve(self, path: str) -> tuple[str, ...]:
        """The parts, below the worktree, of the real file `path` names, once links are resolved."""
        if not path or "\0" in path:
            raise ToolError("path must be a non-empty path relative to the repository root")
        pure = PurePosixPath(path)
        if pure.is_absolute():
            raise ToolError(f"{path}: absolute paths are refused; give a path relative to the root")
        if _touches_git(pure.parts):
            raise ToolError(f"{path}: .git is off limits")
        real = Path(os.path.realpath(self.root / pure))
        try:
            parts = real.relative_to(self.root).parts
        except ValueError:
            if PurePosixPath(os.path.normpath(pure)).parts[0] == "..":
                raise ToolError(f"{path}: '..' leads outside the repository") from None
            raise ToolError(f"{path}: a symbolic link leads outside the repository") from None
        if _touches_git(parts):
            raise ToolError(f"{path}: a symbolic link leads into .git, which is off limits")
        return parts

    def _read_text(self, parts: tuple[str, ...], path: str, cap: int) -> str:
        fd = self._open(parts, os.O_RDONLY)
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ToolError(f"{path} is not a regular file")
            if info.st_size > cap:
                raise ToolError(f"{path} is {info.st_size} bytes; this tool reads at most {cap}")
            data = file.read(cap + 1)
        if len(data) > cap:
            raise ToolError(f"{path} is over {cap} bytes; this tool reads at most {cap}")
        if b"\0" in data:
            raise ToolError(f"{path} is a binary file")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{path} is not UTF-8 text") from None

    def _write(self, parts: tuple[str, ...], data: bytes) -> None:
        if len(data) > WRITE_MAX_BYTES:
            raise ToolError(f"the new content is {len(data)} bytes; the limit is {WRITE_MAX_BYTES}")
        if not parts:
            raise ToolError("the repository root is a directory, not a file")
        fd = self._open(parts, os.O_WRONLY | os.O_CREAT, make_parents=True)
        with os.fdopen(fd, "wb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ToolError(f"{'/'.join(parts)} is not a regular file")
            if info.st_nlink > 1:
                raise ToolError(f"{'/'.join(parts)} has other hard links; refusing to write")
            os.ftruncate(file.fileno(), 0)
            file.write(data)

    def _open(self, parts: tuple[str, ...], flags: int, *, make_parents: bool = False) -> int:
        """Open `parts` below the worktree, never following a symbolic link on the way."""
        try:
            return self._open_beneath(parts, flags, make_parents=make_parents)
        except OSError as exc:
            raise ToolError(f"{'/'.join(parts) or '.'}: {_os_message(exc)}") from None

    def _open_beneath(self, parts: tuple[str, ...], flags: int, *, make_parents: bool) -> int:
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts[:-1]:
                if make_parents:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            if not parts:
                return os.dup(fd)
            return os.open(parts[-1], flags | _FILE_FLAGS, 0o644, dir_fd=fd)
        finally:
            os.close(fd)

    def _walk(self, parts: tuple[str, ...]) -> Iterator[str]:
        queue = collections.deque([parts])
        while queue:
            current = queue.popleft()
            fd = self._open(current, os.O_RDONLY | os.O_DIRECTORY)
            try:
                entries = sorted(os.scandir(fd), key=lambda entry: entry.name)
                for entry in entries:
                    if _touches_git((entry.name,)):
                        continue
                    relative = "/".join((*current, entry.name))
                    if entry.is_symlink():
                        yield f"{relative} -> {os.readlink(entry.name, dir_fd=fd)}"
                    elif entry.is_dir(follow_symlinks=False):
                        queue.append((*current, entry.name))
                        yield f"{relative}/"
                    else:
                        yield relative
            finally:
                os.close(fd)

    def _record(self, parts: tuple[str, ...]) -> str:
        relative = "/".join(parts)
        self._changed.setdefault(relative)
        return relative


def command_report(result: RunResult, *, wall_seconds: float) -> str:
    """A command's end and output as the model reads it, each stream cut to its last part."""
    if result.timed_out:
        head = f"stopped: the command ran past its {wall_seconds:g} s limit"
    else:
        head = f"exit code {result.exit_code} ({result.duration_s:.1f} s)"
    sections = [head]
    for label, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            sections.append(f"--- {label} ---\n{_tail(text, cut=result.truncated)}")
    return "\n".join(sections)


def _tail(text: str, *, cut: bool) -> str:
    if len(text) <= COMMAND_OUTPUT_CHARS and not cut:
        return text
    return f"[earlier output cut]\n{text[-COMMAND_OUTPUT_CHARS:]}"


def _arguments(name: str, arguments: str) -> dict[str, Any]:
    """The decoded arguments of a call, checked against the tool's schema."""
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(f"the arguments of {name} are not valid JSON ({exc.msg})") from None
    if not isinstance(args, dict):
        raise ToolError(f"the arguments of {name} must be a JSON object")
    _, properties, required = _SCHEMAS[name]
    missing = [key for key in required if key not in args]
    unknown = [key for key in args if key not in properties]
    if missing or unknown:
        raise ToolError(f"{name} takes {_signature(properties, required)}; got {sorted(args)}")
    for key, value in args.items():
        if not _JSON_TYPES[properties[key]["type"]](value):
            raise ToolError(f"{name}: {key} must be of type {properties[key]['type']}")
    return args


def _signature(properties: Mapping[str, Any], required: Sequence[str]) -> str:
    return ", ".join(key if key in required else f"{key} (optional)" for key in properties)


def _touches_git(parts: Sequence[str]) -> bool:
    return any(part.lower() == ".git" for part in parts)


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("the text is not valid Unicode (it holds a lone surrogate)") from None


def _os_message(exc: OSError) -> str:
    """The reason of an OS error in words, without host paths (the model knows which path)."""
    if exc.errno == errno.ELOOP:
        return "a symbolic link is in the way; give the path of the real file"
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.ENOTDIR:
        return "not a directory"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return exc.strerror or type(exc).__name__
