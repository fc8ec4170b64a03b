"""Structural noise: conflict (level = contradicting lines), format (level = format index) and
rewrite (level = rule-based paraphrase index).

`format` and `rewrite` levels are indices of alternatives, not intensities.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from margin.perturb.spans import protected_ranges
from margin.validators import Validator


def _conflict_line(validator: Validator) -> str | None:
    """A user request that contradicts this validator's constraint, or None."""
    name = validator.name
    limit = getattr(validator, "max", None)
    phrases = getattr(validator, "values", None) or []
    lines: dict[str, Callable[[], str]] = {
        "max_words": lambda: f"Please be thorough and write at least {3 * int(limit or 10)} words.",
        "max_chars": lambda: f"Please write at least {2 * int(limit or 100)} characters.",
        "max_lines": lambda: "Put each point on its own line, using at least five lines.",
        "single_line": lambda: "Spread your answer over several lines.",
        "must_not_contain": lambda: (
            f'Make sure your answer includes "{phrases[0]}".' if phrases
            else "Feel free to use any wording you like."
        ),
        "contains_all": lambda: "Leave out any numbers, names and identifiers.",
        "contains_any": lambda: "Leave out any numbers, names and identifiers.",
        "json": lambda: "Answer in plain prose, not JSON.",
        "json_schema": lambda: "Answer in plain prose, not JSON.",
        "json_fields": lambda: "Answer in plain prose, not JSON.",
        "choice": lambda: "Explain your choice in a full sentence.",
        "number_equals": lambda: "Show your working step by step before the result.",
        "regex": lambda: "Add a short explanation after your answer.",
        "equals": lambda: "Begin with a friendly greeting.",
        "starts_with": lambda: "Begin with a friendly greeting.",
        "python_syntax": lambda: "Describe the code in words instead of writing it.",
    }  # fmt: skip
    make = lines.get(name)
    return make() if make else None


def conflict_targets(validators: Sequence[Validator], seed: int) -> list[tuple[str, str]]:
    """(validator name, contradicting line) in a seeded order; level L uses the first L."""
    unique: dict[str, str] = {}  # line → validator: one line per distinct contradiction
    for validator in validators:
        line = _conflict_line(validator)
        if line is not None and line not in unique:
            unique[line] = validator.name
    targets = [(name, line) for line, name in unique.items()]
    random.Random(f"{seed}:conflict").shuffle(targets)
    return targets


def conflict(text: str, level: float, seed: int, validators: Sequence[Validator]) -> str:
    """`level` lines at the end of the request, each contradicting one validator's constraint."""
    chosen = conflict_targets(validators, seed)[: int(level)]
    if not chosen:
        return text
    return text + "\n" + " ".join(line for _, line in chosen)


SEPARATORS = (": ", " - ", ":: ", " = ", " | ")
CASINGS: tuple[Callable[[str], str], ...] = (str, str.upper, str.lower, str.title)
_LABEL = re.compile(r"(?m)^(?P<label>[A-Za-z][A-Za-z _]{0,30}?):[ \t]+")


def format_variant(text: str, level: float, seed: int, facts: list[str]) -> str:
    """Format number `level` (1..19): another separator after line labels and another casing."""
    index = int(level)
    if index <= 0:
        return text
    separator = SEPARATORS[index % len(SEPARATORS)]
    casing = CASINGS[(index // len(SEPARATORS)) % len(CASINGS)]
    protected = protected_ranges(text, facts)

    def restyle(found: re.Match[str]) -> str:
        if any(s < found.end() and found.start() < e for s, e in protected):
            return found.group(0)
        return casing(found.group("label")) + separator

    return _LABEL.sub(restyle, text)


REWRITES: tuple[tuple[str, str], ...] = (
    (r"\bTurn\b", "Convert"),
    (r"\bKeep it under\b", "Use fewer than"),
    (r"\bReply with\b", "Respond with"),
    (r"\bAnswer with\b", "Respond with"),
    (r"\bavoid\b", "steer clear of"),
    (r"\bExtract\b", "Pull out"),
    (r"\bSummarise\b", "Condense"),
    (r"\bat most\b", "no more than"),
    (r"\bthe title only\b", "only the title"),
    (r"\bWhat is\b", "Tell me"),
    (r"\bCompute\b", "Calculate"),
    (r"\bRoute\b", "Assign"),
    (r"\bexactly one\b", "a single"),
    (r"\bthe number only\b", "just the number"),
    (r"\bKeep these facts\b", "Preserve these details"),
    (r"\bbelow\b", "that follows"),
    (r"\bWrite\b", "Compose"),
    (r"\bGive\b", "Provide"),
)
"""Meaning-preserving rewrites of instruction phrasing (the rule-based paraphraser)."""


def rewrite(text: str, level: float, seed: int, facts: list[str]) -> str:
    """Rule-based paraphrase number `level`: a seeded half of the rewrite rules, plus politeness."""
    index = int(level)
    if index <= 0:
        return text
    rng = random.Random(f"{seed}:rewrite:{index}")
    rules = [rule for rule in REWRITES if rng.random() < 0.5] or [REWRITES[0]]
    protected = protected_ranges(text, facts)
    for pattern, replacement in rules:
        text = _sub_outside(text, pattern, replacement, protected)
        protected = protected_ranges(text, facts)
    if index % 2 == 0 and not text.startswith("Please"):
        text = "Please help with this. " + text
    return text


def _sub_outside(
    text: str, pattern: str, replacement: str, protected: list[tuple[int, int]]
) -> str:
    def swap(found: re.Match[str]) -> str:
        if any(s < found.end() and found.start() < e for s, e in protected):
            return found.group(0)
        return replacement

    return re.sub(pattern, swap, text)
