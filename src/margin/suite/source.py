"""Read a YAML file safely and keep where every value came from, for one-line errors.

Suites and configs are data written by people, and sometimes by attackers: the reader caps the
file size, the nesting depth, the expanded size (so an alias bomb cannot eat the memory) and the
length of integers (Python refuses to print one past 4,300 digits), refuses recursive aliases
(a value that contains itself cannot be written to a journal) and duplicate keys (YAML would
silently keep the last one), and maps every field path to its line so a pydantic error can point
at it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from margin.errors import UserError, format_loc
from margin.suite.parser import Refused, compose

MAX_BYTES = 2 * 1024 * 1024
"""Largest suite or config file accepted; real suites are a few kilobytes."""
MAX_DEPTH = 40
"""Deepest nesting accepted; real suites nest about six levels."""
MAX_NODES = 200_000
"""Most YAML nodes accepted once aliases are expanded (an alias bomb expands to billions)."""
Loc = tuple[str | int, ...]

SECRET_FIELDS = frozenset({"api_key", "api_base"})
"""Fields whose rejected value is never echoed in an error message (it may be a key)."""

ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
)
"""Plain data only: any other tag (`!!python/…`, `!!binary`, `!!set`, `!custom`) is refused."""


@dataclass(frozen=True)
class Source:
    """A parsed YAML file: its data and the line of every field path in it."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the deepest known prefix of `loc` (1-based), if any."""
        path: list[str | int] = []
        best = self.lines.get(())
        for part in loc:
            candidate = (*path, part if isinstance(part, int) else str(part))
            if candidate in self.lines:
                path = list(candidate)
                best = self.lines[candidate]
            # Parts pydantic adds that are not in the file (union tags) are skipped.
        return best

    def error(
        self, message: str, loc: Sequence[str | int] = (), cls: type[UserError] = UserError
    ) -> UserError:
        """An error pointing at `loc` in this file."""
        return cls(message, path=self.path, line=self.line_of(loc), field=format_loc(loc) or None)


def read_yaml(path: Path, cls: type[UserError] = UserError) -> Source:
    """Parse `path` into a Source, or raise `cls` naming the file and line of the problem."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise cls("not a file", path=path)
        if size > MAX_BYTES:
            raise cls(f"file is {size:,} bytes; the limit is {MAX_BYTES:,}", path=path)
        raw = path.read_bytes()
    except OSError as exc:
        raise cls(exc.strerror or str(exc), path=path) from None
    text = _decode(raw, path, cls)
    try:
        root, loader = compose(text)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, path, cls) from None
    except Refused as exc:
        raise cls(exc.message, path=path, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise cls(f"YAML syntax error: {problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise cls(f"YAML error: {exc}", path=path) from None
    except RecursionError:
        raise cls(f"nested deeper than {MAX_DEPTH} levels", path=path) from None
    if root is None:
        raise cls("file is empty", path=path, line=1)
    _check_expanded_size(root, path, cls)
    lines: dict[Loc, int] = {}
    _walk(root, (), 0, lines, set(), path, cls)
    try:
        data = loader.construct_document(root)
    except Refused as exc:
        raise cls(exc.message, path=path, line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise cls(
            f"YAML error: {getattr(exc, 'problem', None) or exc}",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    return Source(path=path, data=data, lines=lines)


def _decode(raw: bytes, path: Path, cls: type[UserError]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise cls(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            path=path,
            line=line,
        ) from None


def _unreadable(
    exc: yaml.reader.ReaderError, text: str, path: Path, cls: type[UserError]
) -> UserError:
    """A character YAML refuses anywhere in the file (comments included): which, and where."""
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    what = "control character" if code < 0x20 or 0x7F <= code <= 0x9F else "character"
    return cls(
        f"{what} U+{code:04X} is not allowed in YAML, not even in a comment; in a"
        f' double-quoted string write it as "\\u{code:04X}"',
        path=path,
        line=text.count("\n", 0, exc.position) + 1,
    )


def _walk(
    node: yaml.Node,
    loc: Loc,
    depth: int,
    lines: dict[Loc, int],
    seen_nodes: set[int],
    path: Path,
    cls: type[UserError],
) -> None:
    """Record lines, refuse deep nesting and duplicate keys; an aliased node is walked once."""
    if id(node) in seen_nodes:
        return
    seen_nodes.add(id(node))
    if depth > MAX_DEPTH:
        raise cls(
            f"nested deeper than {MAX_DEPTH} levels",
            path=path,
            line=node.start_mark.line + 1,
            field=format_loc(loc) or None,
        )
    lines.setdefault(loc, node.start_mark.line + 1)
    if node.tag not in ALLOWED_TAGS:
        raise cls(
            f"YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed: a suite or"
            " config holds plain data (text, numbers, lists, mappings)",
            path=path,
            line=node.start_mark.line + 1,
            field=format_loc(loc) or None,
        )
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key in seen and key != "<<":
                raise cls(
                    f"duplicate key {key!r}",
                    path=path,
                    line=key_node.start_mark.line + 1,
                    field=format_loc((*loc, key)),
                )
            seen.add(key)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*loc, key), depth + 1, lines, seen_nodes, path, cls)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), depth + 1, lines, seen_nodes, path, cls)


def _check_expanded_size(root: yaml.Node, path: Path, cls: type[UserError]) -> None:
    """Refuse documents whose aliases expand past MAX_NODES (linear time via memoisation)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key not in sizes:
            sizes[key] = 0  # a cycle would count as zero, but the composer refused them
            children: list[yaml.Node] = []
            if isinstance(node, yaml.MappingNode):
                children = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            sizes[key] = 1 + sum(size(child) for child in children)
            if sizes[key] > MAX_NODES:
                raise cls(
                    f"expands to more than {MAX_NODES:,} values (YAML aliases nested too deep)",
                    path=path,
                    line=node.start_mark.line + 1,
                )
        return sizes[key]

    size(root)


M = TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], source: Source, cls: type[UserError] = UserError) -> M:
    """`model.model_validate(source.data)`, with the first error turned into one line."""
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        raise pydantic_error(exc, model, source, cls) from None


def pydantic_error(
    exc: ValidationError, model: type[BaseModel], source: Source, cls: type[UserError]
) -> UserError:
    """The first error of `exc` as a UserError at its line, with the expected keys named."""
    errors = exc.errors(include_url=False)
    # An unknown key is the likelier cause of a missing one beside it (a misspelt key is
    # both): name it first, with its "did you mean".
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        message = f"unknown key {loc[-1]!r}"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        elif allowed:
            message += f"; expected one of: {', '.join(allowed)}"
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}"
        loc = loc[:-1]  # the key is absent: point at the mapping that lacks it
    elif any(str(part) in SECRET_FIELDS for part in loc):
        message = str(first["msg"]).removeprefix("Value error, ")  # never echo a secret
    else:
        message = f"{first['msg']}, got {short_repr(first.get('input'))}"
    return _with_more(source.error(message, loc, cls), len(errors))


def _with_more(err: UserError, count: int) -> UserError:
    if count > 1:
        err.message += f" (and {count - 1} more error{'s' if count > 2 else ''})"
    return err


def short_repr(value: Any) -> str:
    """`repr(value)`, cut to 60 characters for a one-line error."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the model found by following `loc` down from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        current = _model_in(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside `list[M]`, `M | None` and the like, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
