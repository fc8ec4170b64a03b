"""Inserted noise: distractors (level = irrelevant sentences) and long_context (level = tokens).

Sentences come from a corpus written for margin (`corpus.txt`, shipped in the package): no
digits and no words the example suites' validators look for. Insertion i is drawn from its own
seeded generator, so a higher level keeps every insertion of a lower one and adds more.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from importlib.resources import files

from margin.perturb.spans import outside, protected_ranges

CHARS_PER_TOKEN = 4
LONG_CONTEXT_HEADER = "Background notes (not related to the request):"


@lru_cache(maxsize=1)
def corpus() -> tuple[str, ...]:
    """The irrelevant sentences."""
    text = files("margin.perturb").joinpath("corpus.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _sentence(seed: int, index: int) -> str:
    sentences = corpus()
    return sentences[random.Random(f"{seed}:sentence:{index}").randrange(len(sentences))]


def distractors(text: str, level: float, seed: int, facts: list[str]) -> str:
    """`level` irrelevant sentences inserted at sentence or line boundaries."""
    count = int(level)
    if count <= 0:
        return text
    protected = protected_ranges(text, facts)
    bounds = [m.end() for m in re.finditer(r"[.!?](?=\s)|\n", text) if outside(m.end(), protected)]
    bounds = sorted(set([0, *bounds, len(text)]))
    inserts: dict[int, list[str]] = {}
    for index in range(count):
        at = bounds[random.Random(f"{seed}:at:{index}").randrange(len(bounds))]
        inserts.setdefault(at, []).append(_sentence(seed, index))
    out, cursor = [], 0
    for at in sorted(inserts):
        out.append(text[cursor:at])
        joined = " ".join(inserts[at])
        if at == 0:
            out.append(joined + " ")
        elif at == len(text):
            out.append(" " + joined)
        else:
            out.append(" " + joined + ("" if text[at : at + 1].isspace() else " "))
        cursor = at
    out.append(text[cursor:])
    return "".join(out)


def padding(tokens: int, seed: int) -> str:
    """About `tokens` tokens of irrelevant sentences; a longer padding extends a shorter one."""
    sentences: list[str] = []
    size, index = 0, 0
    while size < tokens * CHARS_PER_TOKEN:
        sentence = _sentence(seed, index)
        sentences.append(sentence)
        size += len(sentence) + 1
        index += 1
    return " ".join(sentences)


def long_context(text: str, level: float, seed: int, facts: list[str]) -> str:
    """`level` tokens of irrelevant background placed before the request."""
    tokens = int(level)
    if tokens <= 0:
        return text
    return f"{LONG_CONTEXT_HEADER}\n{padding(tokens, seed)}\n\n{text}"
