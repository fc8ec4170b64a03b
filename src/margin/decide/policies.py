"""Delivery policies: estimated from recorded repeats without new calls, and measured when run.

`retry(m, r)`: up to r attempts of model m, stopping at the first that passes every validator.
`cascade(m1, m2*2, …)`: m1 first, the next step when a validator fails; `m*k` gives a step k
tries. Estimates use each prompt's *own* recorded repeats (a case × variant): failures
correlate within a prompt, so the chance that r tries all fail is C(n − c, r) / C(n, r) —
drawing r of its n recorded answers without replacement — never (1 − p)^r from a pooled p.
Steps on different models are taken as independent given the prompt. Where a prompt has fewer
recorded repeats than a step's tries, the estimate uses what there is and flags it thin. The
interval is a cluster bootstrap over cases, widened to the Wilson interval on the cases where
that is wider (a bootstrap of cases that all pass would collapse to a point).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from margin.errors import UserError
from margin.results.rows import PolicyRow, PolicyRunRow
from margin.stats.cells import TASK, Targets, cell_table
from margin.stats.intervals import rate_interval

_STEP = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\*\s*(\d+))?\s*$")


@dataclass(frozen=True)
class Policy:
    """Steps of (model, tries), tried in order until one answer passes."""

    name: str
    """Canonical spelling (`retry(m, 2)`, `cascade(a*2, b)`): the same policy, one name."""
    steps: tuple[tuple[str, int], ...]

    @property
    def tries(self) -> list[str]:
        """The model of every try in order: `cascade(a*2, b)` is [a, a, b]."""
        return [model for model, tries in self.steps for _ in range(tries)]


def parse_policy(text: str, models: set[str] | None = None) -> Policy:
    """`retry(m, 2)` or `cascade(m1, m2*2)`; a malformed policy or unknown model is a
    UserError (one line)."""
    found = re.fullmatch(r"\s*(retry|cascade)\s*\((.*)\)\s*", text)
    if not found:
        raise UserError(
            f"policy {text!r}: write retry(MODEL, TRIES) or cascade(MODEL, MODEL*TRIES, …)"
        )
    kind, inside = found.group(1), [p for p in found.group(2).split(",")]
    if kind == "retry":
        if len(inside) != 2 or not inside[1].strip().isdigit() or int(inside[1]) < 1:
            raise UserError(f"policy {text!r}: retry takes a model and a number of tries ≥ 1")
        steps: tuple[tuple[str, int], ...] = ((inside[0].strip(), int(inside[1])),)
    else:
        parsed = [_STEP.match(p) for p in inside]
        if len(parsed) < 2 or not all(parsed):
            raise UserError(
                f"policy {text!r}: a cascade takes two or more steps, MODEL or MODEL*TRIES"
            )
        steps = tuple((m.group(1), int(m.group(2) or 1)) for m in parsed if m)
    if any(tries < 1 for _, tries in steps):
        raise UserError(f"policy {text!r}: tries must be ≥ 1")
    unknown = [model for model, _ in steps if models is not None and model not in models]
    if unknown:
        raise UserError(f"policy {text!r}: no model {unknown[0]!r} in this run")
    if kind == "retry":
        name = f"retry({steps[0][0]}, {steps[0][1]})"
    else:
        name = "cascade(" + ", ".join(m if t == 1 else f"{m}*{t}" for m, t in steps) + ")"
    return Policy(name, steps)


def _all_fail(fails: np.ndarray, n: np.ndarray, tries: np.ndarray) -> np.ndarray:
    """P(k draws without replacement from n recorded answers, n − c of them failing, all fail)."""
    k = np.minimum(tries, n)
    return np.asarray(special.comb(fails, k) / special.comb(n, k), dtype=np.float64)


def _expected_tries(fails: np.ndarray, n: np.ndarray, tries: int) -> np.ndarray:
    """E[calls in a step of `tries`] = Σ_{j<tries} P(the first j all fail)."""
    total = np.zeros(len(n))
    for j in range(tries):
        total += _all_fail(fails, n, np.full(len(n), j))
    return total


def estimate(
    frame: pd.DataFrame, policy: Policy, suite: str, task: str, boot: int = 1000, seed: int = 0
) -> PolicyRow:
    """The policy's reliability (cluster-bootstrap 95% interval over cases), expected calls and
    cost per 1,000 executions on `suite/task`, from the judged attempts in `frame`."""
    judged = frame[frame["judged"] & (frame["suite"] == suite) & (frame["task"] == task)]
    per = {}
    for model, _ in policy.steps:
        rows = judged[judged["model"] == model]
        per[model] = rows.groupby(["case", "variant"], observed=True).agg(
            n=("passed", "size"), c=("passed", "sum"), cost=("cost_usd", "mean"),
        )  # fmt: skip
    shared = None
    for table in per.values():
        index = table.index
        shared = index if shared is None else shared.intersection(index)
    if shared is None or len(shared) == 0:
        raise UserError(
            f"policy {policy.name!r}: no prompt of {suite}/{task} has attempts of every step"
        )
    success, calls, cost, thin = _steps(policy, {m: t.loc[shared] for m, t in per.items()})
    cases = np.asarray([c for c, _ in shared])
    low, high = _case_interval(success, cases, boot, seed)
    mean_cost = float(np.mean(cost))
    p50, p95 = _latency(judged, policy, list(shared), seed)
    return PolicyRow(
        policy=policy.name,
        suite=suite,
        task=task,
        rate=float(success.mean()),
        low=low,
        high=high,
        cases=len(np.unique(cases)),
        prompts=len(shared),
        thin=int(thin.sum()),
        calls=float(calls.mean()),
        cost_per_1000=None if np.isnan(mean_cost) else mean_cost * 1000,
        latency_p50=p50,
        latency_p95=p95,
    )


def _steps(
    policy: Policy, per: dict[str, pd.DataFrame]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per prompt (the rows of each model's `per` table: n recorded answers, c passing, mean
    cost): the chance some try passes, the expected calls and cost, and whether a step has
    fewer recorded repeats than its tries (thin)."""
    size = len(next(iter(per.values())))
    fail_all = np.ones(size)
    reach = np.ones(size)
    calls = np.zeros(size)
    cost = np.zeros(size)
    thin = np.zeros(size, dtype=bool)
    for model, tries in policy.steps:
        table = per[model]
        n = table["n"].to_numpy(dtype=np.float64)
        fails = n - table["c"].to_numpy(dtype=np.float64)
        thin |= n < tries
        step_calls = _expected_tries(fails, n, tries)
        calls += reach * step_calls
        cost += reach * step_calls * table["cost"].to_numpy(dtype=np.float64)
        step_fail = _all_fail(fails, n, np.full(len(n), tries))
        fail_all *= step_fail
        reach = fail_all.copy()
    return 1 - fail_all, calls, cost, thin


def _case_interval(
    success: np.ndarray, cases: np.ndarray, boot: int, seed: int
) -> tuple[float, float]:
    """95% interval of the mean of `success` (one value per prompt): a bootstrap over the
    `cases` the prompts belong to, widened to the Wilson interval on the cases."""
    labels, codes = np.unique(cases, return_inverse=True)
    sums = np.bincount(codes, weights=success)
    counts = np.bincount(codes).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(labels), size=(boot, len(labels)))
    boot_rates = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(boot_rates, [0.025, 0.975])
    # A bootstrap of all-passing cases collapses to [1, 1]; the Wilson interval on the cases
    # (each case one piece of evidence) keeps it honest, and the hull of the two is reported.
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
    replacement from that prompt's recorded attempts, latencies summed until one passes."""
    recorded: dict[tuple[str, str, str], list[tuple[bool, float]]] = {}
    columns = ["model", "case", "variant", "passed", "latency_s"]
    for model, case, variant, passed, seconds in judged[columns].to_numpy(dtype=object):
        key = (str(model), str(case), str(variant))
        recorded.setdefault(key, []).append((bool(passed), float(seconds or 0.0)))
    rng = np.random.default_rng(seed)
    totals = []
    for index in rng.integers(0, len(prompts), size=runs):
        case, variant = (str(x) for x in prompts[index])
        total, done = 0.0, False
        for model, tries in policy.steps:
            answers = recorded.get((model, case, variant), [])
            for pick in rng.permutation(len(answers))[:tries]:
                passed, seconds = answers[pick]
                total += seconds
                if passed:
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


EXECUTION = ["policy", "suite", "task", "case", "variant", "repeat"]
"""One policy execution: a policy used once on one prompt (`repeat` is the execution index)."""


def executions(steps: pd.DataFrame, policies: list[Policy]) -> pd.DataFrame:
    """One row per policy execution run for real, shaped like an attempt so the cell tables
    score it: `model` is the policy, `passed` whether some try passed (NaN unless the execution
    is finished: a try passed, or every try failed a validator), `latency_s` and `cost_usd` the
    sums over its tries, `partial` the last try's, plus `calls` and `incomplete`."""
    known = {p.name: len(p.tries) for p in policies}
    steps = steps[steps["policy"].astype(str).isin(set(known))]
    columns = [*EXECUTION, "model", "judged", "passed", "calls", "incomplete", "partial"]
    if steps.empty:
        return pd.DataFrame(columns=columns)
    ordered = steps.sort_values([*EXECUTION, "step"])
    ordered = ordered.assign(
        failed=(ordered["passed"] == 0.0), won=(ordered["passed"] == 1.0),
        policy=ordered["policy"].astype(str),
    )  # fmt: skip
    group = ordered.groupby(EXECUTION, observed=True, sort=False)
    table = group.agg(
        calls=("step", "size"),
        failed=("failed", "sum"),
        won=("won", "any"),
        errors=("judged", lambda judged: int((~judged).sum())),
        latency_s=("latency_s", lambda s: s.sum(min_count=len(s))),
        cost_usd=("cost_usd", lambda s: s.sum(min_count=len(s))),
        cost_saved_usd=("cost_saved_usd", "sum"),
        judge_cost_usd=("judge_cost_usd", "sum"),
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
        truncated=("truncated", "any"),
        over_max_tokens=("over_max_tokens", "any"),
        cache_hit=("cache_hit", "all"),
        partial=("partial", "last"),
        paraphrase=("paraphrase", "first"),
        noise_kind=("noise_kind", "first"),
        noise_level=("noise_level", "first"),
        condition=("condition", "first"),
    ).reset_index()
    finished = table["won"] | (table["failed"] == table["policy"].map(known))
    table["judged"] = finished.to_numpy(dtype=bool)
    table["passed"] = np.where(table["judged"], table["won"].astype(np.float64), np.nan)
    table["incomplete"] = ~table["judged"] & (table["errors"] == 0)
    table["error"] = pd.Series("InfraError", index=table.index).where(
        ~(table["judged"] | table["incomplete"])
    )
    table["model"] = table["policy"].astype("category")
    return table.drop(columns=["failed", "won", "errors"])


def measured(steps: pd.DataFrame | None, policies: list[Policy], targets: Targets) -> pd.DataFrame:
    """Per policy × task, what the executions run for real delivered: the reliability with its
    95% interval (cases as clusters, as for a model), verdict, calls per execution, cost per
    1,000 executions, end-to-end p50/p95 latency, infra-stopped and unfinished executions."""
    columns = list(PolicyRunRow.model_fields)
    done = executions(steps, policies) if steps is not None else pd.DataFrame()
    if done.empty:
        return pd.DataFrame(columns=columns)
    cells = cell_table(done, TASK, targets)
    extra = done.groupby(TASK, observed=True).agg(
        calls=("calls", "mean"), incomplete=("incomplete", "sum")
    )
    table = cells.merge(extra.reset_index(), on=TASK, how="left")
    table["infra_errors"] = table["infra_errors"] - table["incomplete"]
    return table.rename(columns={"model": "policy"})[columns]
