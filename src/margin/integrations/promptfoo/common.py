"""What every part of the promptfoo importer shares: the result, its losses, the error, ids."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from margin.errors import UserError

DEFAULT_TARGET = 0.9


@dataclass(frozen=True)
class Loss:
    """Something of the promptfoo config that margin does not carry over (or carries over with
    a different meaning): where it was, what it was, and why."""

    where: str
    what: str
    why: str


@dataclass
class Imported:
    """The converted suite, models config and gate limits, and what did not convert."""

    suite: dict[str, Any]
    models: dict[str, Any] | None
    gate: dict[str, Any] | None
    lost: list[Loss]
    changed: list[Loss]
    tests: int
    cases: int


class PromptfooError(UserError):
    """A promptfoo config margin cannot read at all."""


def slug(text: str, fallback: str) -> str:
    """`text` as a margin id (letters, digits, `_ . -`, lower case), else `fallback`."""
    found = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip()).strip("-._").lower()[:60]
    return found if found and found[0].isalnum() else fallback


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-2`, `name-3`, … if it is taken; the result is taken from now on."""
    candidate, n = name, 2
    while candidate in taken:
        candidate = f"{name}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def short(value: Any) -> str:
    """`value` as text of at most 60 characters, for a loss's `what`."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "…"
