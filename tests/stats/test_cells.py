"""Cells and robustness tables, against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from margin.stats import (
    CONDITION,
    TASK,
    attempts_of,
    cell_table,
    pass_k_table,
    validator_table,
)
from margin.stats.robustness import margins, noise_drops, paraphrase_spread
from tests.stats.records import exact_interval, outcomes, record, repeated

TARGETS = {("s", "t"): 0.9}


def test_condition_cell_counts_rate_interval_latency_and_cost() -> None:
    records = outcomes("m", "11110111x1")  # 8 of 9 judged pass, one infra error
    records[0] = record("m", "c0", True, cache_hit=True, saved=0.004, latency=3.0)
    cells = cell_table(attempts_of(records).frame, CONDITION, TARGETS)
    row = cells.iloc[0]
    assert (row["attempts"], row["n"], row["passes"], row["infra_errors"]) == (10, 9, 8, 1)
    assert (row["low"], row["high"]) == pytest.approx(exact_interval(8, 9))
    assert row["deff"] == 1.0 and row["verdict"] == "undecided"
    latencies = [3.0] + [1.0] * 8  # the cache hit carries its recorded latency; errors none
    assert row["latency_p50"] == pytest.approx(np.percentile(latencies, 50))
    assert row["latency_p95"] == pytest.approx(np.percentile(latencies, 95))
    # 8 paid attempts at $0.001 and a cache hit that saved $0.004: the production cost per call
    assert row["cost_per_1000"] == pytest.approx((8 * 0.001 + 0.004) / 9 * 1000)
    assert row["cache_hits"] == 1


def test_more_attempts_to_decide_by_hand() -> None:
    cells = cell_table(attempts_of(outcomes("m", "1111111100")).frame, CONDITION, TARGETS)
    # 8/10 against 0.9: n ≥ z²·0.9·0.1/(0.8 − 0.9)² = 34.57, so about 25 more attempts
    assert cells.iloc[0]["more_attempts"] == 25
    done = cell_table(attempts_of(outcomes("m", "0000000000")).frame, CONDITION, TARGETS)
    assert done.iloc[0]["verdict"] == "falls short" and np.isnan(done.iloc[0]["more_attempts"])


def test_pooled_cell_respects_clustering_and_reports_consistency() -> None:
    table = ["111", "111", "000", "110", "111", "100"]
    frame = attempts_of(repeated("m", table)).frame
    cell = cell_table(frame, TASK, TARGETS).iloc[0]
    assert (cell["n"], cell["passes"], cell["cases"]) == (18, 12, 6)
    assert cell["deff"] > 1 and cell["n_eff"] == pytest.approx(18 / cell["deff"])
    effective = exact_interval(12 / cell["deff"], 18 / cell["deff"])
    assert (cell["low"], cell["high"]) == pytest.approx(effective)
    assert cell["consistency"] == pytest.approx(4 / 6)  # 111, 111, 000, 111 agree
    assert cell["retry_free"] == pytest.approx(3 / 6)
    k = pass_k_table(frame, TASK).set_index("k")
    # per case C(c,3)/C(3,3): 1,1,0,0,1,0 → 0.5; C(c,2)/C(3,2): 1,1,0,1/3,1,0 → 5/9
    assert k.loc[3, "pass_hat_k"] == pytest.approx(0.5)
    assert k.loc[2, "pass_hat_k"] == pytest.approx((1 + 1 + 0 + 1 / 3 + 1 + 0) / 6)
    assert k.loc[1, "pass_at_k"] == pytest.approx(12 / 18)


def test_temperature_zero_copies_count_as_cases() -> None:
    frame = attempts_of(repeated("m", ["11111"] * 10)).frame
    cell = cell_table(frame, TASK, TARGETS).iloc[0]
    assert cell["n_eff"] == pytest.approx(10)  # 50 copies of 10 answers are 10 pieces of evidence
    assert cell["low"] == pytest.approx(0.025 ** (1 / 10))  # 10/10: low^10 = 0.025


def test_validator_table_shows_which_constraint_breaks_first() -> None:
    records = [
        record("m", f"c{i}", i < 4, checks={"max_words": i < 4 or i == 9, "regex": True})
        for i in range(10)
    ]
    table = validator_table(
        attempts_of(records).frame, attempts_of(records).verdicts, TASK, TARGETS
    )
    rates = table.set_index("validator")["rate"]
    assert rates["max_words"] == pytest.approx(0.5) and rates["regex"] == 1.0
    assert set(table["verdict"]) <= {"crosses", "falls short", "undecided"}


def noisy_records() -> list:  # type: ignore[type-arg]
    records = outcomes("m", "1111111111")
    records += outcomes("m", "1111111100", variant="p1", paraphrase=1)
    for level, results in [(0.05, "1111111110"), (0.1, "1111100000")]:
        records += outcomes("m", results, variant=f"p0~typos@{level}v1", noise=("typos", level))
    return records


def test_noise_drop_and_paraphrase_spread_by_hand() -> None:
    conditions = cell_table(attempts_of(noisy_records()).frame, CONDITION, {("s", "t"): 0.7})
    drops = noise_drops(conditions).set_index("noise_level")
    assert drops.loc[0.05, "drop"] == pytest.approx(1 - 0.9 / 1.0)
    assert drops.loc[0.1, "drop"] == pytest.approx(1 - 0.5 / 1.0)
    spread = paraphrase_spread(conditions).iloc[0]
    assert (spread["max_p"], spread["avg_p"], spread["min_p"]) == pytest.approx((1.0, 0.9, 0.8))
    assert spread["worst"] == "p1"


def test_margin_walks_each_axis_from_clean() -> None:
    conditions = cell_table(attempts_of(noisy_records()).frame, CONDITION, {("s", "t"): 0.65})
    row = margins(conditions).iloc[0]
    # clean 10/10 [69.1, 100] crosses 0.65; typos@0.05 9/10 [55.5, 99.7] undecided
    assert row["axis"] == "typos" and row["margin"] == 0.0
    assert row["status"] == "undecided" and row["breaks_at"] == 0.05
    verdicts = pd.DataFrame(
        {
            "model": "m", "suite": "s", "task": "t",
            "condition": ["p0", "typos@0.05", "typos@0.1", "case@1"],
            "noise_kind": ["clean", "typos", "typos", "case"],
            "noise_level": [0.0, 0.05, 0.1, 1.0],
            "verdict": ["crosses", "crosses", "falls short", "crosses"],
        }
    )  # fmt: skip
    walked = margins(verdicts).set_index("axis")
    assert walked.loc["typos", "margin"] == 0.05 and walked.loc["typos", "status"] == "bounded"
    assert walked.loc["case", "margin"] == 1.0 and walked.loc["case", "status"] == "beyond"
    verdicts.loc[0, "verdict"] = "falls short"
    assert set(margins(verdicts)["status"]) == {"none"}
