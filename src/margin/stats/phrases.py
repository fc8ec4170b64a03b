"""Rates in words for the page, summary.md, the recommendation and `margin score`: each with
its n and its 95% interval, or a sentence saying why there is none.

Three shapes: a count (`3/250 1.2% [0.3, 4.1]`, `stats.numbers.rate_with_interval`), a mean
over cases of a value in [0, 1] (`62.5% [40.1, 80.2] over 8 cases`: pass^k, partial credit,
an estimate), and a share of cases (`8/10 80.0% [44.3, 97.5]`: consistency).
"""

from __future__ import annotations

from typing import Any

from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED, rate_interval, share_interval
from margin.stats.numbers import interval, percent, rate_with_interval

NOT_RECORDED = "not recorded (journal before guards)"
"""What a cell without guard outcomes says instead of a silent-failure rate."""


def _missing(value: Any) -> bool:
    return value is None or value != value


def counted_text(count: int, n: int) -> str:
    """`7/9 77.8% [40.0, 97.2]`: count of n with its 95% interval; `–` when n is 0."""
    if not n:
        return "–"
    low, high = rate_interval(count, n)
    return rate_with_interval(int(count), int(n), float(low), float(high))


def mean_over_text(value: Any, n: int, noun: str) -> str:
    """`91.7% [61.5, 99.8] over 12 verdicts`: a mean of values in [0, 1] over `n` units with its
    interval (`stats.shares`); `–` when there is no value."""
    if _missing(value) or not n:
        return "–"
    low, high = share_interval(float(value) * n, n)
    return f"{percent(float(value))} {interval(float(low), float(high))} over {n} {noun}"


def silent_text(silent: Any, guarded_n: Any, low: Any, high: Any) -> str:
    """`3/250 1.2% [0.3, 4.1]`: failures every production guard let through, of the judged
    attempts whose guards were recorded; NOT_RECORDED for a journal written before guards."""
    if _missing(guarded_n) or _missing(silent):
        return NOT_RECORDED
    return rate_with_interval(int(silent), int(guarded_n), float(low), float(high))


def undetectable_text(silent: Any, guarded_n: Any, low: Any, high: Any) -> str:
    """The recommendation's clause: `1.2% [0.3, 4.1] of answers wrong and undetectable
    (3/250)`."""
    if _missing(guarded_n) or _missing(silent):
        return f"answers wrong and undetectable: {NOT_RECORDED}"
    if int(guarded_n) == 0:
        return "answers wrong and undetectable: 0/0 (no judged attempts)"
    k, n = int(silent), int(guarded_n)
    return (
        f"{percent(k / n, k, n)} {interval(float(low), float(high))} of answers wrong and"
        f" undetectable ({k}/{n})"
    )


def mean_text(value: Any, low: Any, high: Any, cases: Any) -> str:
    """`62.5% [40.1, 80.2] over 8 cases`: a mean over cases of a value in [0, 1] with its
    interval over cases (`stats.shares`); `–` when there is no value."""
    if _missing(value):
        return "–"
    count = int(cases)
    noun = "case" if count == 1 else "cases"
    if _missing(low) or _missing(high):
        return f"{percent(float(value))} over {count} {noun} (no interval in this results.json)"
    return f"{percent(float(value))} {interval(float(low), float(high))} over {count} {noun}"


def pooled_mean_text(value: float, cases: int) -> str:
    """`mean_text` of a mean pooled here (a model's pass^k over its tasks' cases), its
    interval over cases computed as `stats.shares` computes the others."""
    low, high = share_interval(value * cases, cases)
    return mean_text(value, float(low), float(high), cases)


def share_text(value: Any, low: Any, high: Any, cases: Any) -> str:
    """`8/10 80.0% [44.3, 97.5]`: a share of `cases` (consistency) with its interval over
    cases; `–` when there is none (one attempt per case)."""
    if _missing(value):
        return "–"
    count = int(cases)
    k = round(float(value) * count)
    if _missing(low) or _missing(high):
        return f"{k}/{count} {percent(float(value), k, count)} (no interval in this results.json)"
    return rate_with_interval(k, count, float(low), float(high))


def task_verdicts_text(verdicts: list[str], noun: bool = True) -> str:
    """`crosses every task`, or how many of a model's task `verdicts` fall short and are
    undecided (`falls short on 1 of 6 tasks`; without `noun`, `falls short on 1 of 6`)."""
    if verdicts and all(v == CROSSES for v in verdicts):
        return "crosses every task"
    tasks = f" task{'s' if len(verdicts) != 1 else ''}" if noun else ""
    parts = [
        f"{status} on {verdicts.count(status)} of {len(verdicts)}{tasks}"
        for status in (FALLS_SHORT, UNDECIDED)
        if verdicts.count(status)
    ]
    return ", ".join(parts) or "no judged attempts"
