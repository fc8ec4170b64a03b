"""Seeded, pure noise and paraphrase generators: same text, kind, level and seed → same output.

Noise touches the request (instruction and input), never the expectations, and never the
protected facts — every string or number in the case's `expect` (an order number, an amount):
a typo in `1234` would make "keeps the order number" impossible and measure nothing about the
model. Jinja tags are protected too, so templates can be perturbed and still render.

Kinds and what their level means:
  typos, case, whitespace, mildmix   share of words (gaps) changed, 0..1
  distractors                        irrelevant sentences inserted
  long_context                       tokens of irrelevant background before the request
  conflict                           lines contradicting one of the task's constraints each
  format                             index of a separator/label-casing variant (1..19)
  rewrite                            index of a rule-based paraphrase of the instruction
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from margin.perturb.inserts import distractors, long_context
from margin.perturb.spans import facts_in
from margin.perturb.structure import conflict, format_variant, rewrite
from margin.perturb.words import case, mildmix, typos, whitespace
from margin.validators import Validator

__all__ = ["GENERATORS", "VERSIONS", "NoiseContext", "apply_noise", "facts_in"]


@dataclass(frozen=True)
class NoiseContext:
    """What a generator may need besides the text: facts to protect, the task's validators."""

    facts: tuple[str, ...] = ()
    validators: tuple[Validator, ...] = field(default=())


Generator = Callable[[str, float, int, NoiseContext], str]

GENERATORS: dict[str, Generator] = {
    "typos": lambda t, lv, s, c: typos(t, lv, s, list(c.facts)),
    "case": lambda t, lv, s, c: case(t, lv, s, list(c.facts)),
    "whitespace": lambda t, lv, s, c: whitespace(t, lv, s, list(c.facts)),
    "mildmix": lambda t, lv, s, c: mildmix(t, lv, s, list(c.facts)),
    "distractors": lambda t, lv, s, c: distractors(t, lv, s, list(c.facts)),
    "long_context": lambda t, lv, s, c: long_context(t, lv, s, list(c.facts)),
    "conflict": lambda t, lv, s, c: conflict(t, lv, s, c.validators),
    "format": lambda t, lv, s, c: format_variant(t, lv, s, list(c.facts)),
    "rewrite": lambda t, lv, s, c: rewrite(t, lv, s, list(c.facts)),
}

VERSIONS: dict[str, int] = {kind: 1 for kind in GENERATORS}
"""Generator versions, part of every variant key: change a generator, bump its version, so
caches and baselines never mix outputs of two different generators."""

INDEX_KINDS = frozenset({"format", "rewrite"})
"""Kinds whose level picks an alternative rather than setting an intensity."""


def apply_noise(text: str, kind: str, level: float, seed: int, ctx: NoiseContext) -> str:
    """`text` under noise `kind` at `level`; level 0 returns `text` unchanged."""
    if level == 0 or kind == "clean":
        return text
    if kind not in GENERATORS:
        raise ValueError(f"unknown noise kind {kind!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[kind](text, level, seed, ctx)


def kinds() -> Sequence[str]:
    """Every noise kind, in a stable order."""
    return tuple(GENERATORS)
