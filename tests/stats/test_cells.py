"""Cells, robustness tables, rank bands and the recommendation, against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from margin.decide.rank import pareto_frontier, rank_bands
from margin.decide.summary import recommendation_lines
from margin.stats import (
    CONDITION,
    MODEL,
    TASK,
    attempts_of,
    cell_table,
    pass_k_table,
    score_attempts,
    validator_table,
    wilson_interval,
)
from margin.stats.robustness import margins, noise_drops, paraphrase_spread
from tests.stats.records import outcomes, record

TARGETS = {("s", "t"): 0.9}


def test_condition_cell_counts_rate_interval_latency_and_cost() -> None:
    records = outcomes("m", "11110111x1")  # 8 of 9 judged pass, one infra error
    records[0] = record("m", "c0", True, cache_hit=True, saved=0.004, latency=3.0)
    cells = cell_table(attempts_of(records).frame, CONDITION, TARGETS)
    row = cells.iloc[0]
    assert (row["attempts"], row["n"], row["passes"], row["infra_errors"]) == (10, 9, 8, 1)
    low, high = wilson_interval(8, 9)
    assert (row["low"], row["high"]) == pytest.approx((float(low), float(high)))
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


def repeated(model: str, table: list[str]) -> list:  # type: ignore[type-arg]
    """table[case] = outcomes of its repeats, e.g. ["110", "111"]."""
    return [
        record(model, f"c{i}", ch == "1", repeat=r)
        for i, row in enumerate(table)
        for r, ch in enumerate(row)
    ]


def test_pooled_cell_respects_clustering_and_reports_consistency() -> None:
    table = ["111", "111", "000", "110", "111", "100"]
    frame = attempts_of(repeated("m", table)).frame
    cell = cell_table(frame, TASK, TARGETS).iloc[0]
    assert (cell["n"], cell["passes"], cell["cases"]) == (18, 12, 6)
    assert cell["deff"] > 1 and cell["n_eff"] == pytest.approx(18 / cell["deff"])
    low, high = wilson_interval(12 / cell["deff"], 18 / cell["deff"])
    assert (cell["low"], cell["high"]) == pytest.approx((float(low), float(high)))
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
    assert cell["low"] == pytest.approx(float(wilson_interval(10, 10)[0]))


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
    conditions = cell_table(attempts_of(noisy_records()).frame, CONDITION, {("s", "t"): 0.7})
    row = margins(conditions).iloc[0]
    # clean 10/10 [72.2,100] crosses 0.7; typos@0.05 9/10 [59.6, 98.2] undecided
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


def test_rank_bands_tie_what_the_data_cannot_separate() -> None:
    records = outcomes("a", "1" * 40) + outcomes("b", "1" * 39 + "0") + outcomes("c", "0" * 40)
    scores = score_attempts(attempts_of(records), TARGETS)
    bands = scores.models.set_index("model")
    assert bands.loc["a", "rank"] == 1 and bands.loc["b", "rank"] == 1  # tied: 1 discordant pair
    assert bands.loc["c", "rank"] == 3
    assert bands.loc["a", "tied_with"] == "b"
    direct = rank_bands(pd.Series({"x": 0.9, "y": 0.5}), scores.pairs.iloc[:0])
    assert list(direct["rank"]) == [1, 1]


def test_pareto_frontier_by_hand() -> None:
    models = pd.DataFrame(
        {
            "low": [0.9, 0.8, 0.7, 0.9],
            "cost_per_1000": [2.0, 1.0, 1.5, np.nan],
            "latency_p95": [1.0, 1.0, 2.0, 0.5],
        }
    )
    assert list(pareto_frontier(models)) == [True, True, False, True]


def crossing_set(cost_cheap: float, latency_cheap: float) -> list:  # type: ignore[type-arg]
    return (
        outcomes("cheap", "1" * 40, cost=cost_cheap, latency=latency_cheap)
        + outcomes("pricey", "1" * 40, cost=0.01)
        + outcomes("weak", "1" * 20 + "0" * 20, cost=0.0001)
    )


def test_recommends_the_cheapest_model_that_crosses() -> None:
    scores = score_attempts(attempts_of(crossing_set(0.001, 1.0)), TARGETS)
    rec = scores.recommendation
    assert (rec.model, rec.runner_up) == ("cheap", "pricey")
    weak = next(s for s in rec.shortfalls if s.model == "weak")
    assert weak.status == "falls short" and weak.task == "s/t" and weak.validator == "v"
    lines = recommendation_lines(scores)
    assert lines[0].startswith(
        "Recommended: cheap — crosses every task; overall 40/40 100.0% [91.2, 100.0]"
    )
    assert any(line.startswith("weak: falls short on s/t: 20/40 50.0%") for line in lines)


def test_a_latency_budget_passes_over_a_slow_model() -> None:
    scores = score_attempts(
        attempts_of(crossing_set(0.001, 5.0)), TARGETS, budgets={("s", "t"): 2.0}
    )
    rec = scores.recommendation
    assert rec.model == "pricey" and rec.runner_up is None
    slow = next(s for s in rec.shortfalls if s.model == "cheap")
    assert slow.status == "too slow" and slow.budget_s == 2.0


def test_no_recommendation_from_undecided_evidence() -> None:
    records = outcomes("a", "1" * 10) + outcomes("b", "1" * 9 + "0")
    scores = score_attempts(attempts_of(records), TARGETS)
    rec = scores.recommendation
    assert rec.model is None and rec.closest == "a" and rec.undecided == 2
    lines = recommendation_lines(scores)
    assert lines[0] == "No model crosses 0.9 on every task: nothing is recommended."
    assert "about 25 more independent attempts" in "\n".join(lines)
    model = cell_table(attempts_of(records).frame, MODEL, TARGETS).set_index("model")
    assert model.loc["a", "verdict"] == "undecided"


def test_an_undecided_cell_of_copies_asks_for_new_cases() -> None:
    scores = score_attempts(attempts_of(repeated("m", ["111"] * 10)), TARGETS)
    lines = "\n".join(recommendation_lines(scores))
    # 10 cases whose 3 repeats agree are 10 pieces of evidence (deff 3); an effective n of
    # z²·0.9/0.1 = 34.57 is needed: 34.57 × 3 − 30 = 73.7, so about 74 more attempts
    assert "m on s/t: 30/30 100.0% [72.2, 100.0]; about 74 more attempts on new cases" in lines
