"""Delivery policies: estimated from recorded repeats without new calls.

`retry(m, r)`: up to r attempts of model m; `cascade(m1, m2*2, …)`: m1 first, then the next
step; `m*k` gives a step k tries. A product moves on only when a *guard* fails — a check it can
run on a live answer, without the case's `expect` — so the answer it delivers is the first whose
guards pass (else the last try's), and the policy's reliability is how often THAT answer passes
every validator. A failure every guard lets through (silent) is delivered: no policy catches it.
Spelled with `on=any` (`retry(m, 2, on=any)`), a policy moves on whenever any validator fails,
as if it knew the right answer: an oracle, shown only as a labelled upper bound, never
recommended.

Estimates use each prompt's *own* recorded repeats (a case × variant): failures correlate
within a prompt, so r tries are r of its n recorded answers drawn without replacement — never
independent draws from a pooled rate. With c passing, s silent and d detected answers, the j-th
try is reached when the j − 1 before it were all detected: C(d, j−1) / C(n, j−1); it then
delivers a pass with chance c / (n − j + 1). (Drawn with replacement at shares p, s, d this is
p·(1 − dʳ)/(1 − d).) Steps on different models are taken as independent given the prompt. Where
a prompt has fewer recorded repeats than a step's tries, the estimate uses what there is and
flags it thin. A failure whose guard outcome was not recorded (a journal before version 4)
counts as detected, which makes the row an upper bound, labelled so. The interval is a cluster
bootstrap over cases, widened to `rate_interval` on the cases where that is wider (a bootstrap
of cases that all pass would collapse to a point).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from margin.decide.policy_spec import ORACLE_LABEL, UNGUARDED_LABEL, Policy
from margin.errors import UserError
from margin.results.policy_rows import PolicyRow
from margin.stats.intervals import rate_interval


@dataclass(frozen=True)
class _Delivered:
    """Per prompt, what one policy execution delivers, in expectation."""

    rate: np.ndarray
    """Chance the delivered answer passes every validator."""
    silent: np.ndarray
    """Chance it passes every guard and fails a reference check."""
    calls: np.ndarray
    cost: np.ndarray
    thin: np.ndarray


def _counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per prompt of one model: n judged answers, c passing, s silent (failed, every guard
    passed), d detected (failed, a guard failed or its outcome unknown), u unknown, mean cost."""
    failed = rows["passed"] == 0
    marked = rows.assign(
        silent=(failed & (rows["guarded"] == 1)).astype(np.float64),
        detected=(failed & (rows["guarded"] != 1)).astype(np.float64),
        unknown=(failed & rows["guarded"].isna()).astype(np.float64),
    )
    return marked.groupby(["case", "variant"], observed=True).agg(
        n=("passed", "size"), c=("passed", "sum"), s=("silent", "sum"), d=("detected", "sum"),
        u=("unknown", "sum"), cost=("cost_usd", "mean"),
    )  # fmt: skip


def _step(table: pd.DataFrame, tries: int, oracle: bool) -> dict[str, np.ndarray]:
    """One step of `tries` on each prompt, its tries drawn without replacement from the prompt's
    recorded answers: the chance it delivers a pass, a silent failure, or goes on past its last
    try (`through`, with `last_silent` the chance the last of those is silent), and its calls."""
    n = table["n"].to_numpy(dtype=np.float64)
    c = table["c"].to_numpy(dtype=np.float64)
    s = table["s"].to_numpy(dtype=np.float64)
    goes_on = n - c if oracle else table["d"].to_numpy(dtype=np.float64)
    k = np.minimum(tries, n)
    out = {name: np.zeros(len(n)) for name in ("passes", "silent", "calls")}
    for j in range(tries):
        # past a thin prompt's recorded answers a try is still made (and paid) when they all
        # went on, but it adds no new answer: it repeats one of them
        drawn = np.minimum(j, n)
        reach = special.comb(goes_on, drawn) / special.comb(n, drawn)
        live = j < k
        left = np.where(live, n - j, 1.0)  # answers not yet drawn
        out["calls"] += reach
        out["passes"] += np.where(live, reach * c / left, 0.0)
        if not oracle:
            out["silent"] += np.where(live, reach * s / left, 0.0)
    out["through"] = np.asarray(special.comb(goes_on, k) / special.comb(n, k), dtype=np.float64)
    # the oracle goes on past every failure; its last failing answer is silent with chance s / f
    share = np.divide(s, n - c, out=np.zeros(len(n)), where=n > c)
    out["last_silent"] = out["through"] * share if oracle else np.zeros(len(n))
    return out


def _deliver(policy: Policy, per: dict[str, pd.DataFrame]) -> _Delivered:
    """The steps of `policy` chained on every prompt (the rows of each model's `per` table)."""
    size = len(next(iter(per.values())))
    reach = np.ones(size)
    rate, silent, calls, cost = (np.zeros(size) for _ in range(4))
    thin = np.zeros(size, dtype=bool)
    last_silent = np.zeros(size)
    for model, tries in policy.steps:
        table = per[model]
        step = _step(table, tries, policy.oracle)
        thin |= table["n"].to_numpy() < tries
        rate += reach * step["passes"]
        silent += reach * step["silent"]
        calls += reach * step["calls"]
        cost += reach * step["calls"] * table["cost"].to_numpy(dtype=np.float64)
        last_silent = reach * step["last_silent"]
        reach = reach * step["through"]
    return _Delivered(rate, silent + last_silent, calls, cost, thin)


def estimate(
    frame: pd.DataFrame, policy: Policy, suite: str, task: str, boot: int = 1000, seed: int = 0
) -> PolicyRow:
    """The policy's reliability and silent-failure rate (cluster-bootstrap 95% intervals over
    cases), expected calls and cost per 1,000 executions on `suite/task`, from the judged
    attempts in `frame`."""
    judged = frame[frame["judged"] & (frame["suite"] == suite) & (frame["task"] == task)]
    per = {model: _counts(judged[judged["model"] == model]) for model, _ in policy.steps}
    shared = None
    for table in per.values():
        shared = table.index if shared is None else shared.intersection(table.index)
    if shared is None or len(shared) == 0:
        raise UserError(
            f"policy {policy.name!r}: no prompt of {suite}/{task} has attempts of every step"
        )
    per = {m: t.loc[shared] for m, t in per.items()}
    done = _deliver(policy, per)
    cases = np.asarray([c for c, _ in shared])
    low, high = _case_interval(done.rate, cases, boot, seed)
    silent_low, silent_high = _case_interval(done.silent, cases, boot, seed)
    unknown = 0 if policy.oracle else int(sum(t["u"].sum() for t in per.values()))
    mean_cost = float(np.mean(done.cost))
    p50, p95 = _latency(judged, policy, list(shared), seed)
    return PolicyRow(
        policy=policy.name, suite=suite, task=task,
        rate=float(done.rate.mean()), low=low, high=high,
        silent=float(done.silent.mean()), silent_low=silent_low, silent_high=silent_high,
        cases=len(np.unique(cases)), prompts=len(shared), thin=int(done.thin.sum()),
        calls=float(done.calls.mean()),
        cost_per_1000=None if np.isnan(mean_cost) else mean_cost * 1000,
        latency_p50=p50, latency_p95=p95,
        oracle=policy.oracle, guards_unknown=unknown,
        upper_bound=ORACLE_LABEL if policy.oracle else UNGUARDED_LABEL if unknown else None,
    )  # fmt: skip


def _case_interval(
    success: np.ndarray, cases: np.ndarray, boot: int, seed: int
) -> tuple[float, float]:
    """95% interval of the mean of `success` (one value per prompt): a bootstrap over the
    `cases` the prompts belong to, widened to `rate_interval` on the cases."""
    labels, codes = np.unique(cases, return_inverse=True)
    sums = np.bincount(codes, weights=success)
    counts = np.bincount(codes).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(labels), size=(boot, len(labels)))
    boot_rates = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(boot_rates, [0.025, 0.975])
    # A bootstrap of all-passing cases collapses to [1, 1]; the interval on the cases (each
    # case one piece of evidence) keeps it honest, and the hull of the two is reported.
    w_low, w_high = rate_interval(success.mean() * len(labels), len(labels))
    return float(min(low, float(w_low))), float(max(high, float(w_high)))


def _latency(
    judged: pd.DataFrame,
    policy: Policy,
    prompts: list[tuple[str, str]],
    seed: int,
    runs: int = 2000,
) -> tuple[float | None, float | None]:
    """p50 / p95 of simulated executions: a prompt at random, each step's tries drawn without
    replacement from that prompt's recorded attempts, latencies summed until one answer stops
    the policy (its guards pass; `on=any`: it passes)."""
    recorded: dict[tuple[str, str, str], list[tuple[bool, float]]] = {}
    failed = judged["passed"] == 0
    goes_on = failed if policy.oracle else failed & (judged["guarded"] != 1)
    rows = judged.assign(goes_on=goes_on)[["model", "case", "variant", "goes_on", "latency_s"]]
    for model, case, variant, on, seconds in rows.to_numpy(dtype=object):
        key = (str(model), str(case), str(variant))
        recorded.setdefault(key, []).append((bool(on), float(seconds or 0.0)))
    rng = np.random.default_rng(seed)
    totals = []
    for index in rng.integers(0, len(prompts), size=runs):
        case, variant = (str(x) for x in prompts[index])
        total, done = 0.0, False
        for model, tries in policy.steps:
            answers = recorded.get((model, case, variant), [])
            for pick in rng.permutation(len(answers))[:tries]:
                on, seconds = answers[pick]
                total += seconds
                if not on:
                    done = True
                    break
            if done:
                break
        totals.append(total)
    if not totals:
        return None, None
    p50, p95 = np.quantile(totals, [0.5, 0.95])
    return float(p50), float(p95)


def estimate_all(frame: pd.DataFrame, policies: list[Policy]) -> list[PolicyRow]:
    """Every policy on every task whose prompts have attempts of all its steps' models."""
    rows = []
    tasks = frame[["suite", "task"]].drop_duplicates().itertuples(index=False)
    for suite, task in [(str(s), str(t)) for s, t in tasks]:
        for policy in policies:
            try:
                rows.append(estimate(frame, policy, suite, task))
            except UserError:
                continue  # a step's model never ran this task
    return rows
