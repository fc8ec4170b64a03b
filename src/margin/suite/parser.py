"""The bounded YAML composer, over libyaml's parser when PyYAML has it, else the Python one.

Both paths compose with PyYAML's Python composer and the same bounds (node count, recursive
aliases, integer length), so lines and refusals are the same; libyaml only scans and parses,
about ten times faster. A file libyaml cannot parse is read again by the Python parser, so every
syntax message is worded the same whichever path a machine has. libyaml accepts a little the
Python parser refuses (a tab between the items of a flow list, `[1,\t2]`, which YAML allows);
nothing it accepts escapes a bound. `margin.suite.source` turns what this raises into one-line
errors.
"""

from __future__ import annotations

from typing import ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

MAX_COMPOSED = 100_000
"""Most YAML nodes written in a file; composing each costs time and memory (~3 s here)."""
MAX_INT_DIGITS = 1000
"""Longest integer accepted, in digits of its own base: even in hexadecimal that stays below the
4,300 decimal digits Python will convert to text (a number this long belongs in quotes)."""


INT_TAG = "tag:yaml.org,2002:int"


class Refused(Exception):
    """What the composer refuses while reading, and the line (1-based) it is on."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Bounds:
    """What both loaders add to PyYAML's composer: stop composing past MAX_COMPOSED nodes,
    before they eat the memory (a 2 MB flow list `[1,1,1,…]` is a million nodes), refuse an
    alias inside the value it names, and integers longer than MAX_INT_DIGITS."""

    composed: int
    open_anchors: set[str]
    """Anchors of the values being composed: an alias to one of them is a cycle."""

    def _start_bounds(self) -> None:
        self.composed = 0
        self.open_anchors = set()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.composed += 1
        event = self.peek_event()  # type: ignore[attr-defined]
        line: int = event.start_mark.line + 1
        if self.composed > MAX_COMPOSED:
            raise Refused(
                f"more than {MAX_COMPOSED:,} values; a suite or config holds a few thousand", line
            )
        anchor: str | None = event.anchor
        if isinstance(event, yaml.AliasEvent) and anchor in self.open_anchors:
            raise Refused(
                f"recursive alias *{anchor}: it stands for a value that contains it", line
            )
        compose = Composer.compose_node
        if anchor is None or isinstance(event, yaml.AliasEvent):
            return compose(self, parent, index)  # type: ignore[arg-type]
        self.open_anchors.add(anchor)  # YAML refuses a duplicate anchor, so a set will do
        try:
            return compose(self, parent, index)  # type: ignore[arg-type]
        finally:
            self.open_anchors.discard(anchor)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = self.construct_scalar(node)  # type: ignore[attr-defined]
        body = text.replace("_", "").lstrip("+-")
        digits = len(body) - 2 if body[:2] in ("0x", "0b", "0o") else len(body)
        if digits > MAX_INT_DIGITS:
            raise Refused(
                f"an integer of {digits:,} digits; the limit is {MAX_INT_DIGITS:,} (quote it to"
                " keep it as text)",
                node.start_mark.line + 1,
            )
        return SafeConstructor.construct_yaml_int(self, node)  # type: ignore[arg-type]

    yaml_constructors: ClassVar = {**SafeConstructor.yaml_constructors, INT_TAG: construct_yaml_int}


class _BoundedLoader(_Bounds, yaml.SafeLoader):
    """The pure-Python safe loader, bounded: the reference for every message."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._start_bounds()


_CBoundedLoader: type | None = None
"""libyaml's scanner and parser (C, ~10x faster) under the same Python composer and bounds;
None when PyYAML was built without libyaml."""

if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CBounded(_Bounds, Composer, CParser, SafeConstructor, Resolver):
        """Events from libyaml; composing (and so every bound and line) stays the Python
        composer's, which comes before CParser's own in the method order."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self._start_bounds()

    _CBoundedLoader = _CBounded


def compose(text: str) -> tuple[yaml.Node | None, SafeConstructor]:
    """The document's node tree, through libyaml when it is there. A file libyaml refuses is
    read again by the Python parser, so every message is the Python parser's; a refusal by the
    shared composer is the same on both paths."""
    if _CBoundedLoader is not None and _NON_PRINTABLE.search(text) is None:
        fast = _CBoundedLoader(text)
        try:
            return fast.get_single_node(), fast
        except (yaml.YAMLError, RecursionError):
            pass  # reworded below
        finally:
            fast.dispose()
    loader = _BoundedLoader(text)  # checks every character first
    try:
        return loader.get_single_node(), loader
    finally:
        loader.dispose()


_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
"""The characters the Python reader refuses: such a file goes to it for the message."""
