"""Since the baseline: the attempts that flipped between two runs, answer beside answer.

Attempts match on model, suite, task, case, variant and repeat (the journal's key without the
run); both sides are the latest record of that attempt, and only attempts judged on both sides
(passed or failed, no infra error, not unscored) can flip. Read from both journals through
the journal's reader; `margin report RUN --baseline BASE` writes it as changes.html.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME
from margin.report.answers import (
    AttemptKey,
    Cell,
    LatestAnswers,
    escaped_size,
    latest_cells,
    model_order,
)
from margin.results.document import Results

CHANGES_NAME = "changes.html"
BUDGET = 3_000_000
"""Estimated bytes of flipped attempts on the page; the page says how many were left out."""
JUDGED = ("pass", "fail")


@dataclass(frozen=True)
class Flip:
    """One attempt judged differently in the two runs."""

    suite: str
    task: str
    case: str
    condition: str
    variant: str
    repeat: int
    before: Cell
    now: Cell

    @property
    def size(self) -> int:
        prompt = sum(escaped_size(m.content.text) for m in self.now.messages)
        return self.before.size + self.now.size + prompt

    @property
    def prompt_changed(self) -> bool:
        return self.before.messages != self.now.messages


@dataclass(frozen=True)
class ModelChanges:
    """One model's flips, both ways, and what could be compared."""

    model: str
    compared: int
    """Attempts judged in both runs."""
    broke: list[Flip]
    """pass → fail (shown)."""
    fixed: list[Flip]
    """fail → pass (shown)."""
    broke_total: int
    fixed_total: int
    only_now: int
    """Attempts of this run with no match in the baseline."""
    only_base: int


def baseline_journal(baseline: Path) -> Path:
    """The baseline run directory's journal; a missing one is a UserError naming it."""
    folder = baseline.parent if baseline.is_file() else baseline
    journal = folder / JOURNAL_NAME
    if not journal.is_file():
        raise UserError(
            "--baseline must be a run directory with its journal (changes.html compares answers)",
            path=baseline,
        )
    return journal


def changes(results: Results, read: LatestAnswers, baseline: Path) -> list[ModelChanges]:
    """Per model (config order), the attempts that flipped since `baseline`, capped at BUDGET
    estimated bytes in all with the totals kept (`read`: the run's journal as the report read
    it, `read_latest`)."""
    now, conditions = read.cells, read.conditions
    before, _ = latest_cells(baseline_journal(baseline))
    models = model_order(results, {key[0] for key in [*now, *before]})
    budget = BUDGET
    out = []
    for model in models:
        mine = [key for key in now if key[0] == model]
        theirs = {key for key in before if key[0] == model}
        both = [k for k in mine if k in theirs]
        judged = [k for k in both if now[k].status in JUDGED and before[k].status in JUDGED]
        flips = [
            _flip(k, before[k], now[k], conditions)
            for k in judged
            if now[k].status != before[k].status
        ]
        broke = [f for f in flips if f.now.status == "fail"]
        fixed = [f for f in flips if f.now.status == "pass"]
        shown_broke, budget = _within(broke, budget)
        shown_fixed, budget = _within(fixed, budget)
        out.append(
            ModelChanges(
                model=model,
                compared=len(judged),
                broke=shown_broke,
                fixed=shown_fixed,
                broke_total=len(broke),
                fixed_total=len(fixed),
                only_now=len(mine) - len(both),
                only_base=len(theirs) - len(both),
            )
        )
    return out


def _flip(
    key: AttemptKey, before: Cell, now: Cell, conditions: dict[tuple[str, str, str], str]
) -> Flip:
    _, suite, task, case, variant, repeat = key
    condition = conditions[(suite, task, variant)]
    return Flip(suite, task, case, condition, variant, repeat, before, now)


def _within(flips: list[Flip], budget: int) -> tuple[list[Flip], int]:
    shown = []
    for flip in flips:
        if flip.size > budget:
            break
        shown.append(flip)
        budget -= flip.size
    return shown, budget
