"""Protected spans: the parts of a text that noise must leave exactly as they are.

Jinja tags (`{{ name }}`, `{% … %}`) keep templates rendering; protected facts (an order number,
an amount — whatever a validator looks for) keep the task possible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def facts_in(expect: Mapping[str, Any]) -> list[str]:
    """Every string and number inside a case's expectations, as text."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, str | int | float):
            text = f"{value:g}" if isinstance(value, float) else str(value)
            if text.strip():
                found.append(text)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(dict(expect))
    return sorted(set(found), key=len, reverse=True)


def protected_ranges(text: str, facts: Iterable[str] = ()) -> list[tuple[int, int]]:
    """Sorted, merged (start, end) ranges of Jinja tags and of every occurrence of a fact."""
    ranges = [(m.start(), m.end()) for m in _JINJA.finditer(text)]
    for fact in facts:
        if not fact:
            continue
        for found in re.finditer(re.escape(fact), text, re.IGNORECASE):
            ranges.append((found.start(), found.end()))
    ranges.sort()
    merged: list[tuple[int, int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def free_words(text: str, protected: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) of every alphabetic word that does not overlap a protected range."""
    words = []
    for match in _WORD.finditer(text):
        start, end = match.span()
        if not any(start < p_end and p_start < end for p_start, p_end in protected):
            words.append((start, end))
    return words


def outside(position: int, protected: Sequence[tuple[int, int]]) -> bool:
    """Whether `position` (a gap between characters) is not inside a protected range."""
    return not any(start < position < end for start, end in protected)


def replace_spans(text: str, edits: dict[tuple[int, int], str]) -> str:
    """`text` with each (start, end) span replaced; spans must not overlap."""
    out, cursor = [], 0
    for (start, end), new in sorted(edits.items()):
        out.append(text[cursor:start])
        out.append(new)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)
