"""Rank bands, the Pareto frontier and the recommendation, against hand computations."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd

from margin.decide.rank import pareto_frontier, rank_bands
from margin.decide.scores import score_attempts
from margin.decide.summary import recommendation_lines
from margin.stats import MODEL, attempts_of, cell_table
from tests.conftest import ROOT
from tests.stats.records import outcomes, repeated

TARGETS = {("s", "t"): 0.9}


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
        "Recommended: cheap — crosses every task; overall 40/40 100.0% [91.1, 100.0]"
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
    # a: 10/10; 26 new cases that all pass (certain at rate 1) reach 36/36, whose lower bound
    # 0.025^(1/36) = 0.9027 ≥ 0.9 (35/35 gives 0.8999)
    assert "about 26 more new cases, one attempt each (4 in 5 chance to settle)" in "\n".join(lines)
    # b: 9/10 sits on the target: no number of new cases at that rate settles it
    assert "no affordable number of new cases settles it" in "\n".join(lines)
    model = cell_table(attempts_of(records).frame, MODEL, TARGETS).set_index("model")
    assert model.loc["a", "verdict"] == "undecided"


def test_an_undecided_cell_of_copies_asks_for_new_cases() -> None:
    scores = score_attempts(attempts_of(repeated("m", ["111"] * 10)), TARGETS)
    lines = "\n".join(recommendation_lines(scores))
    # 10 cases whose 3 repeats agree are 10 pieces of evidence (deff 3), 10/10 effective:
    # [0.025^(1/10), 1] = [0.6915, 1]; 36 all-pass cases cross 0.9 (0.025^(1/36) = 0.9027), so
    # 26 new single-attempt cases (all passing at rate 1) settle it, where the normal count says
    # z²·0.9/0.1 = 34.57 effective, × 3 − 30 = 73.7, about 74 attempts at the current clustering
    assert (
        "m on s/t: 30/30 100.0% [69.1, 100.0]; about 26 more new cases, one attempt each"
        " (4 in 5 chance to settle); its repeats agree: more of them add little" in lines
    )
    row = scores.tasks.iloc[0]
    assert (row["more_attempts"], row["more_cases"]) == (74, 26)


def test_decisions_read_statistics_and_never_the_reverse() -> None:
    """decide/ builds on stats/; no module of stats/ imports decide/ (not even inside a
    function), so the statistics can be read, tested and reused without the decisions."""
    wrong = []
    for path in sorted((ROOT / "src" / "margin" / "stats").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("margin.decide"):
                wrong.append((path.name, node.module))
            if isinstance(node, ast.Import):
                wrong += [
                    (path.name, a.name) for a in node.names if a.name.startswith("margin.decide")
                ]
    assert wrong == []
