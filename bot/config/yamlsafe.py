"""Safe YAML: plain data from untrusted bytes, with the line and column of every value."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.core.errors import ConfigError

MAX_BYTES = 1 << 20
MAX_VALUES = 10_000
MAX_DEPTH = 64

YamlPath = tuple[str | int, ...]

# libyaml's parser is ten times faster on large files; its nodes and marks are the same.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_MERGE = _TAG + "merge"
_SEQ = _TAG + "seq"
_MAP = _TAG + "map"
# Timestamps stay text: a date in a config file is a string to every field that takes one.
_TEXT_TAGS = frozenset({_TAG + "str", _TAG + "timestamp"})
_SCALAR_TAGS = _TEXT_TAGS | {_TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"}


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column in a file."""

    line: int
    col: int


@dataclass(frozen=True)
class ScalarStart:
    """Where a scalar value starts, and its YAML style (`|`, `>`, a quote, or None: plain)."""

    start: Position
    style: str | None


@dataclass(frozen=True)
class Document:
    """Plain data read from one YAML file, with where each value sits in it.

    `positions` maps the path of every mapping entry to its key and of every sequence
    entry to the item; the empty path maps to the document's top-level node.
    """

    path: str
    data: object
    positions: Mapping[YamlPath, Position]
    lines: Sequence[str]
    scalars: Mapping[YamlPath, ScalarStart]

    def position(self, loc: Sequence[str | int]) -> Position:
        """The position of the longest prefix of `loc` present in the file."""
        for end in range(len(loc), -1, -1):
            found = self.positions.get(tuple(loc[:end]))
            if found is not None:
                return found
        return Position(1, 1)

    def value_line_position(self, loc: Sequence[str | int], value_line: int) -> Position:
        """The position of line `value_line` (1-based) of the text value at `loc`.

        Exact for literal block scalars (`key: |`), whose lines are the file's lines;
        any other style folds lines, so the value's own start is the best answer.
        """
        scalar = self.scalars.get(tuple(loc))
        if scalar is None:
            return self.position(loc)
        if scalar.style != "|":
            return scalar.start
        line = scalar.start.line + value_line
        if line > len(self.lines):
            return scalar.start
        text = self.lines[line - 1]
        return Position(line, len(text) - len(text.lstrip(" ")) + 1)


def parse_yaml(path: str, raw: bytes) -> Document:
    """Parse one YAML document from `raw`, refusing anything that is not plain data.

    Raises `ConfigError` (with the file, line and column) for oversized files, bytes
    that are not UTF-8, syntax errors, tags beyond the standard scalars, duplicate keys,
    recursive or exploding aliases, and empty documents.
    """
    if len(raw) > MAX_BYTES:
        raise ConfigError("file is over the 1 MiB limit; refused", path=path, line=1, col=1)
    text = _decode(path, raw)
    _check_printable(path, text)
    root = _compose(path, text)
    if root is None:
        raise ConfigError("file is empty: expected a mapping of keys", path=path, line=1, col=1)
    builder = _Builder(path)
    builder.positions[()] = _start(root)
    data = builder.build(root, ())
    return Document(path, data, builder.positions, text.splitlines(), builder.scalars)


def _decode(path: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        message = f"file is not UTF-8: invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}"
        raise ConfigError(message, path=path, line=line, col=col) from exc


def _check_printable(path: str, text: str) -> None:
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found is not None:
        line, col = _line_col(text, found.start())
        message = f"character U+{ord(found.group()):04X} is not allowed in YAML"
        raise ConfigError(message, path=path, line=line, col=col)


def _compose(path: str, text: str) -> Node | None:
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(path, exc) from exc
    except RecursionError as exc:
        raise ConfigError("nesting too deep", path=path, line=1, col=1) from exc
    finally:
        loader.dispose()
    return node


def _syntax_error(path: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = exc.problem or exc.context or "unreadable"
    if exc.context and exc.problem:
        where = f" at {_mark(exc.context_mark)}" if exc.context_mark is not None else ""
        message = f"{exc.context}{where}, {exc.problem}"
    return ConfigError(f"invalid YAML: {message}", path=path, line=line, col=col)


def _mark(mark: yaml.Mark) -> str:
    return f"{mark.line + 1}:{mark.column + 1}"


def _line_col(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _shorthand(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _start(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, counting every value made."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self.active: set[int] = set()
        self.distinct: set[int] = set()
        self.positions: dict[YamlPath, Position] = {}
        self.scalars: dict[YamlPath, ScalarStart] = {}

    def error(self, message: str, node: Node) -> ConfigError:
        where = _start(node)
        return ConfigError(message, path=self.path, line=where.line, col=where.col)

    def tick(self, node: Node) -> None:
        self.count += 1
        self.distinct.add(id(node))
        if self.count <= MAX_VALUES:
            return
        if len(self.distinct) == self.count:
            raise self.error(f"too many values: over {MAX_VALUES}", node)
        raise self.error(f"alias expansion too large: over {MAX_VALUES} values", node)

    @contextmanager
    def entered(self, node: Node) -> Iterator[None]:
        if id(node) in self.active:
            raise self.error("recursive alias: a value cannot contain itself", node)
        self.active.add(id(node))
        try:
            yield
        finally:
            self.active.discard(id(node))

    def build(self, node: Node, path: YamlPath) -> object:
        self.tick(node)
        if len(path) > MAX_DEPTH:
            raise self.error(f"nesting too deep: over {MAX_DEPTH} levels", node)
        if isinstance(node, ScalarNode):
            self.scalars[path] = ScalarStart(_start(node), node.style)
            return _scalar(self, node)
        with self.entered(node):
            if isinstance(node, SequenceNode):
                return self.sequence(node, path)
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
        raise self.error(f"unsupported YAML node {type(node).__name__}", node)

    def sequence(self, node: SequenceNode, path: YamlPath) -> list[object]:
        if node.tag != _SEQ:
            raise self.error(f"tag {_shorthand(node.tag)} is not allowed", node)
        items: list[object] = []
        for index, item in enumerate(node.value):
            self.positions[(*path, index)] = _start(item)
            items.append(self.build(item, (*path, index)))
        return items

    def mapping(
        self, node: MappingNode, path: YamlPath, taken: frozenset[str] = frozenset()
    ) -> dict[str, object]:
        """Build a mapping; keys in `taken` are already set by the mapping merging this one."""
        if node.tag != _MAP:
            raise self.error(f"tag {_shorthand(node.tag)} is not allowed", node)
        explicit: dict[str, object] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.key(key_node, seen)
            if key not in taken:
                self.positions[(*path, key)] = _start(key_node)
                explicit[key] = self.build(value_node, (*path, key))
        merged: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.merge(value_node, path, merged, taken | explicit.keys())
        return {**merged, **explicit}

    def key(self, node: Node, seen: dict[str, Node]) -> str:
        if not isinstance(node, ScalarNode) or node.tag not in _SCALAR_TAGS:
            raise self.error("mapping keys must be plain scalars", node)
        # Keys are read as written: YAML 1.1 would turn `on:` or `no:` into booleans.
        key = str(node.value)
        first = seen.get(key)
        if first is not None:
            where = _start(first)
            raise self.error(f"duplicate key {key!r} (first at {where.line}:{where.col})", node)
        seen[key] = node
        return key

    def merge(
        self, node: Node, path: YamlPath, merged: dict[str, object], taken: frozenset[str]
    ) -> None:
        """Apply `<<: *base` or `<<: [*a, *b]`: explicit keys win, then earlier sources.

        Keys already set are skipped, not built, so a replaced value leaves no positions.
        """
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.error("a merge key `<<` takes a mapping or a list of mappings", source)
            self.tick(source)
            with self.entered(source):
                merged.update(self.mapping(source, path, taken | merged.keys()))


def _scalar(builder: _Builder, node: ScalarNode) -> object:
    if node.tag in _TEXT_TAGS:
        return str(node.value)
    construct = _CONSTRUCTORS.get(node.tag)
    if construct is None:
        raise builder.error(f"tag {_shorthand(node.tag)} is not allowed", node)
    try:
        return construct(_CONSTRUCTOR, node)
    except (KeyError, ValueError) as exc:
        raise builder.error(f"invalid {node.tag.removeprefix(_TAG)}: {node.value!r}", node) from exc


_CONSTRUCTOR = SafeConstructor()
_CONSTRUCTORS: dict[str, Callable[[SafeConstructor, ScalarNode], object]] = {
    _TAG + "int": SafeConstructor.construct_yaml_int,
    _TAG + "float": SafeConstructor.construct_yaml_float,
    _TAG + "bool": SafeConstructor.construct_yaml_bool,
    _TAG + "null": SafeConstructor.construct_yaml_null,
}
