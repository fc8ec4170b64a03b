"""A decision per feature: the cheapest model that crosses each task, a policy where none does,
the product areas, and the mix's cost beside one model for everything — against hand counts."""

from __future__ import annotations

import pytest

from margin.decide.features import traffic_shares
from margin.decide.portfolio import decide, weighted_quantile
from margin.decide.scores import score_attempts
from margin.results.policy_rows import PolicyRow
from margin.stats import attempts_of
from tests.stats.records import record

PRICE = {"small": 0.001, "medium": 0.004, "large": 0.010}
"""Dollars per attempt: $1, $4 and $10 per 1,000 requests."""
LATENCY = {"small": 0.5, "medium": 1.0, "large": 2.0}


def cell(model: str, task: str, passes: int, n: int = 40) -> list:  # type: ignore[type-arg]
    return [
        record(model, f"c{i}", i < passes, task=task, cost=PRICE[model], latency=LATENCY[model])
        for i in range(n)
    ]


def scored(plan: dict[str, dict[str, int]]):  # type: ignore[no-untyped-def]
    records = [
        r for task, cells in plan.items() for m, k in cells.items() for r in cell(m, task, k)
    ]
    attempts = attempts_of(records)
    targets = {("s", task): 0.9 for task in plan}
    return score_attempts(attempts, targets), attempts


def cascade(task: str, low: float) -> PolicyRow:
    return PolicyRow(
        policy="cascade(medium, large)", suite="s", task=task, rate=0.975, low=low, high=1.0,
        silent=0.0, silent_low=0.0, silent_high=0.09, cases=40, prompts=40, thin=0, calls=1.5,
        cost_per_1000=6.0, latency_p50=1.0, latency_p95=3.0,
    )  # fmt: skip


# 40/40 crosses 0.9 (Clopper–Pearson lower bound 0.025^(1/40) = 0.912); 39/40 does not
THREE = {
    "t1": {"small": 40, "medium": 40, "large": 40},  # the small one suffices
    "t2": {"small": 10, "medium": 40, "large": 40},  # the medium one is needed
    "t3": {"small": 0, "medium": 20, "large": 30},  # no bare model; a cascade does
}
TRAFFIC = {("s", "t1"): 0.5, ("s", "t2"): 0.3, ("s", "t3"): 0.2}


def decisions(plan, traffic, policies, single):  # type: ignore[no-untyped-def]
    scores, attempts = scored(plan)
    return decide(scores.tasks, scores.margins, policies, {}, traffic, attempts.frame,
                  single, order=["small", "medium", "large"])  # fmt: skip


def test_small_medium_and_a_cascade_each_win_their_feature() -> None:
    found = decisions(THREE, TRAFFIC, [cascade("t3", 0.912)], None)
    choices = {f.task: (f.kind, f.choice) for f in found.features}
    assert choices == {
        "t1": ("model", "small"),
        "t2": ("model", "medium"),
        "t3": ("policy", "cascade(medium, large)"),
    }
    t1 = found.features[0]
    assert (t1.passes, t1.n, t1.runner_up, t1.cost_per_1000) == (
        40,
        40,
        "medium",
        pytest.approx(1.0),
    )
    assert t1.line.startswith("s/t1 → small: 40/40 100.0% [91.1, 100.0] crosses 0.9")
    # the mix by hand: 0.5 x $1 + 0.3 x $4 + 0.2 x $6 = $2.90 per 1,000 requests
    assert found.mix.cost_per_1000 == pytest.approx(2.9)
    assert found.mix.covered == 3 and not found.mix.latency_p95_exact
    assert found.mix.latency_p95 == 3.0  # a policy chosen: the largest p95 bounds the mixture's
    assert found.mix.single_model is None and "no single model crosses" in found.mix.line
    [area] = found.areas
    # medium and large each cross 2 of 3; large's worst task (30/40) is nearer than medium's
    assert area.model is None and area.closest == "large"
    assert area.line == "s (3 tasks) → no one model crosses all 3; closest large crosses 2 of 3"


def test_an_oracle_or_a_short_policy_is_never_chosen() -> None:
    oracle = cascade("t3", 0.95).model_copy(update={"oracle": True})
    short = cascade("t3", 0.85)
    found = decisions(THREE, TRAFFIC, [oracle, short], None)
    t3 = found.features[2]
    assert (t3.kind, t3.choice, t3.closest) == ("none", None, "large")
    assert t3.closest_verdict == "falls short" and "none crosses 0.9" in t3.line
    assert found.mix.covered == 2


def test_the_mix_against_one_model_for_everything_by_hand() -> None:
    plan = {"t1": {"small": 40, "large": 40}, "t2": {"small": 40, "large": 40},
            "t3": {"small": 12, "large": 40}}  # fmt: skip
    found = decisions(plan, {}, [], "large")
    assert [f.choice for f in found.features] == ["small", "small", "large"]
    # equal traffic: (1 + 1 + 10) / 3 = $4 per 1,000 against the large model's $10
    assert found.mix.cost_per_1000 == pytest.approx(4.0)
    assert found.mix.single_cost_per_1000 == pytest.approx(10.0)
    # a third of requests on the large model (2 s), two thirds on the small (0.5 s): p95 = 2 s
    assert found.mix.latency_p95_exact and found.mix.latency_p95 == 2.0
    assert found.mix.single_latency_p95 == 2.0
    assert "one model for everything (large): $10.0000 per 1,000" in found.mix.line
    [area] = found.areas
    assert area.model == "large" and area.cost_per_1000 == pytest.approx(10.0)


def test_traffic_shares_normalise_and_default_to_equal() -> None:
    keys = [("s", "a"), ("s", "b"), ("s", "c")]
    assert traffic_shares(keys, {}) == {k: pytest.approx(1 / 3) for k in keys}
    shares = traffic_shares(keys, {("s", "a"): 600, ("s", "b"): 200})
    # c takes the mean of those given (400): 600 : 200 : 400
    assert shares == {
        ("s", "a"): 0.5,
        ("s", "b"): pytest.approx(1 / 6),
        ("s", "c"): pytest.approx(1 / 3),
    }


def test_weighted_quantile_is_the_inverted_cdf() -> None:
    values, weights = [1.0, 2.0, 3.0, 4.0], [0.25, 0.25, 0.25, 0.25]
    import numpy as np

    assert weighted_quantile(np.array(values), np.array(weights), 0.95) == 4.0
    assert weighted_quantile(np.array(values), np.array(weights), 0.5) == 2.0
    assert weighted_quantile(np.array(values), np.array(weights), 0.5) == np.percentile(
        values, 50, method="inverted_cdf"
    )
