"""Delivery policies run for real (`margin run --policy`): what each execution delivered.

An execution is one use of a policy on one prompt; its tries are steps in the journal. The
delivered answer is the first step that does not make the policy go on (`Policy.goes_on`: its
guards passed; `on=any`: it passed), else the last try's; steps after it (left by a run made
under another rule) are ignored. An execution whose delivering step ended in an infra error or
an unscored verdict is counted apart, never as a failure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from margin.decide.policy_spec import ORACLE_LABEL, Policy
from margin.results.policy_rows import PolicyRunRow
from margin.stats.cells import TASK, Targets, cell_table

EXECUTION = ["policy", "suite", "task", "case", "variant", "repeat"]
"""One policy execution: a policy used once on one prompt (`repeat` is the execution index)."""

_SUMS = ["cost_saved_usd", "judge_cost_usd", "input_tokens", "output_tokens"]
_FIRSTS = ["paraphrase", "noise_kind", "noise_level", "condition"]


def _kept(steps: pd.DataFrame, known: dict[str, Policy]) -> pd.DataFrame:
    """Each execution's steps up to the one that delivers (or the last recorded), in order,
    marked `goes_on` where that step's answer makes the policy try again."""
    ordered = steps.sort_values([*EXECUTION, "step"]).reset_index(drop=True)
    names = ordered["policy"].astype(str)
    oracle = names.map(lambda name: known[name].oracle).to_numpy(dtype=bool)
    failed = (ordered["passed"] == 0).to_numpy()
    caught = (ordered["guarded"] == 0).to_numpy()
    ordered = ordered.assign(policy=names, goes_on=np.where(oracle, failed, caught))
    ordered["stop"] = (~ordered["goes_on"]).astype(np.int64)
    group = ordered.groupby(EXECUTION, observed=True, sort=False)["stop"]
    before = group.cumsum() - ordered["stop"]  # answers that stopped it before this step
    kept: pd.DataFrame = ordered[before.to_numpy() == 0]
    return kept


def executions(steps: pd.DataFrame, policies: list[Policy]) -> pd.DataFrame:
    """One row per policy execution run for real, shaped like an attempt so the cell tables
    score it: `model` is the policy; `passed` and `guarded` the delivered answer's (NaN unless
    the execution is finished: an answer stopped it, or every try went on); `latency_s` and
    `cost_usd` the sums over its tries, `partial` the delivered answer's; plus `calls` and
    `incomplete`."""
    known = {p.name: p for p in policies}
    steps = steps[steps["policy"].astype(str).isin(set(known))]
    columns = [*EXECUTION, "model", "judged", "passed", "guarded", "calls", "incomplete"]
    if steps.empty:
        return pd.DataFrame(columns=[*columns, "partial"])
    kept = _kept(steps, known)
    group = kept.groupby(EXECUTION, observed=True, sort=False)
    table = group.agg(
        calls=("step", "size"),
        last_on=("goes_on", "last"),
        last_judged=("judged", "last"),
        passed=("passed", "last"),
        guarded=("guarded", "last"),
        latency_s=("latency_s", lambda s: s.sum(min_count=len(s))),
        cost_usd=("cost_usd", lambda s: s.sum(min_count=len(s))),
        truncated=("truncated", "any"),
        over_max_tokens=("over_max_tokens", "any"),
        cache_hit=("cache_hit", "all"),
        partial=("partial", "last"),
        **{name: (name, "sum") for name in _SUMS},
        **{name: (name, "first") for name in _FIRSTS},
    ).reset_index()
    tries = table["policy"].map(lambda name: len(known[name].tries))
    finished = table["last_judged"] & (~table["last_on"] | (table["calls"] == tries))
    table["judged"] = finished.to_numpy(dtype=bool)
    table["passed"] = table["passed"].where(table["judged"])
    table["guarded"] = table["guarded"].where(table["judged"])
    table["incomplete"] = table["last_judged"] & ~table["judged"]
    stopped = ~table["judged"] & ~table["incomplete"]  # an infra error or unscored verdict
    table["error"] = pd.Series("InfraError", index=table.index).where(stopped)
    table["model"] = table["policy"].astype("category")
    return table.drop(columns=["last_on", "last_judged"])


def measured(steps: pd.DataFrame | None, policies: list[Policy], targets: Targets) -> pd.DataFrame:
    """Per policy × task, what the executions run for real delivered: the reliability with its
    95% interval (cases as clusters, as for a model), verdict, silent failures (the delivered
    answer passed its guards and failed a reference check) with their interval, calls per
    execution, cost per 1,000 executions, end-to-end p50/p95 latency, infra-stopped and
    unfinished executions, and the oracle's label for a policy spelled `on=any`."""
    columns = list(PolicyRunRow.model_fields)
    done = executions(steps, policies) if steps is not None else pd.DataFrame()
    if done.empty:
        return pd.DataFrame(columns=columns)
    cells = cell_table(done, TASK, targets)  # with the silent split of the delivered answers
    extra = done.groupby(TASK, observed=True).agg(
        calls=("calls", "mean"), incomplete=("incomplete", "sum")
    )
    table = cells.merge(extra.reset_index(), on=TASK, how="left")
    table["infra_errors"] = table["infra_errors"] - table["incomplete"]
    oracle = {p.name: p.oracle for p in policies}
    table["oracle"] = table["model"].astype(str).map(oracle).fillna(False).astype(bool)
    table["upper_bound"] = pd.Series(ORACLE_LABEL, index=table.index).where(table["oracle"], None)
    return table.rename(columns={"model": "policy"})[columns]
