"""The recommendation in words: every rate with its n and interval, and a model's verdict shown
as the combination of its tasks' verdicts, never beside the pooled interval."""

from __future__ import annotations

import re

from margin.decide.scores import score_attempts
from margin.decide.summary import recommendation_lines
from margin.stats import attempts_of
from margin.stats.intervals import rate_interval
from margin.stats.numbers import interval
from tests.stats.records import record

RATE = re.compile(r"(\S+ )?\d+(\.\d+)?%( \[[^\]]*\])?")
WITH_N = re.compile(r"\d+/\d+ \d+(\.\d+)?% \[\d+\.\d, \d+\.\d\]")


def test_worst_condition_and_first_break_carry_n_and_interval() -> None:
    # p0 fails one case of 200, p1 passes all: 399/400 against 0.999 is undecided
    records = [record("m", f"c{i}", i != 0, variant="p0", paraphrase=0) for i in range(200)] + [
        record("m", f"c{i}", True, variant="p1", paraphrase=1) for i in range(200)
    ]
    scores = score_attempts(attempts_of(records), {("s", "t"): 0.999})
    text = "\n".join(recommendation_lines(scores))
    low, high = rate_interval(199, 200)  # Clopper–Pearson [0.9724, 0.99987]
    # 199/200 is 99.5%, never 100%
    assert f"worst condition p0 (199/200 99.5% {interval(float(low), float(high))})" in text
    v = scores.validators.iloc[0]
    assert f"breaks first: v (399/400 99.8% {interval(v['low'], v['high'])})" in text
    # no percentage anywhere in the lines without its passes/n and interval
    for match in RATE.finditer(text):
        assert WITH_N.search(match.group(0)), match.group(0)
