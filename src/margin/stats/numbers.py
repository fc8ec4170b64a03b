"""Numbers for people: a rate never rounds to a claim the data does not make.

199/200 is `99.5%`, never `100%`; 1/1000 is `0.1%`, never `0%`; interval bounds round outward,
so a printed interval always contains the computed one.
"""

from __future__ import annotations

import math


def percent(rate: float, passes: int | None = None, n: int | None = None) -> str:
    """`rate` as a percentage with one decimal, more when rounding would reach 0% or 100%
    without the counts being 0 or all."""
    if rate != rate:
        return "–"
    exact_all = passes is not None and n is not None and passes == n
    exact_none = passes is not None and passes == 0
    for decimals in (1, 2, 3, 4):
        text = f"{rate * 100:.{decimals}f}"
        if float(text) >= 100 and not exact_all and rate < 1:
            continue
        if float(text) <= 0 and not exact_none and rate > 0:
            continue
        return f"{text}%"
    return ">99.99%" if rate >= 0.5 else "<0.01%"


def bound(value: float, up: bool) -> str:
    """One interval bound in percent, rounded outward (down for a lower bound, up for an
    upper) to one decimal."""
    if value != value:
        return "–"
    scaled = value * 1000
    rounded = (math.ceil(scaled - 1e-9) if up else math.floor(scaled + 1e-9)) / 10
    return f"{rounded:.1f}"


def interval(low: float, high: float) -> str:
    """`[77.0, 95.3]` in percent."""
    return f"[{bound(low, up=False)}, {bound(high, up=True)}]"


def rate_with_interval(passes: int, n: int, low: float, high: float) -> str:
    """`41/46 89.1% [77.0, 95.3]`: never a rate without its n and interval."""
    if n == 0:
        return "0/0 (no judged attempts)"
    return f"{passes}/{n} {percent(passes / n, passes, n)} {interval(low, high)}"


def money(value: float | None) -> str:
    """`$0.0123`, or `unknown` when the price is not known."""
    if value is None or value != value:
        return "unknown"
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def seconds(value: float | None) -> str:
    """`0.84 s`, or `–` when unmeasured."""
    if value is None or value != value:
        return "–"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def inside(rate: float | None, low: float | None, high: float | None) -> str:
    """Whether a measured rate falls inside an estimate's interval: yes, no, or — (no rate or
    no estimate)."""
    if rate is None or rate != rate or low is None or high is None:
        return "—"
    return "yes" if low <= rate <= high else "no"


def more_cases_text(more_cases: float | None) -> str:
    """What an undecided cell needs, in the one wording summary.md, the gate, JUnit and the
    pytest plugin share: `about 67 more new cases, one attempt each (4 in 5 chance to settle)`
    from a results row's `more_cases`; None or NaN (the rate sits on or too near the target)
    says that no number does."""
    if more_cases is None or more_cases != more_cases:
        return (
            "its rate sits on or too near the target, so no affordable number of new"
            " cases settles it at this rate"
        )
    count = int(more_cases)
    cases = "case" if count == 1 else "cases"
    return f"about {count:,} more new {cases}, one attempt each (4 in 5 chance to settle)"
