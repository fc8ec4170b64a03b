"""Score a run directory: every table of statistics (`margin.stats`), the comparisons, then the
decisions on them — rank bands, the Pareto frontier and the recommendation (`rank`).

It reads what the runner wrote and nothing else: `run.json` (models, settings), the suite
copies (targets, latency budgets) and the journal. `margin.results.score` turns these scores
into results.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from margin.config import ModelSpec, RunSettings
from margin.decide import rank
from margin.decide.targets import Budgets, task_targets
from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME
from margin.journal.rundir import read_run_file
from margin.results.rows import Recommendation
from margin.stats.cells import (
    CONDITION,
    MODEL,
    TASK,
    Targets,
    cell_table,
    pass_k_table,
    validator_table,
)
from margin.stats.compare import ALPHA, compare_pairs, outcome_matrix
from margin.stats.drops import drop_tests, with_drops, with_tests
from margin.stats.frame import Attempts, read_attempts
from margin.stats.robustness import margins, noise_drops, paraphrase_spread
from margin.stats.shares import with_pass_k_intervals, with_share_intervals, with_wordings_pooled
from margin.suite.load import load_suite
from margin.suite.tasks import Suite


@dataclass(frozen=True)
class Scores:
    """A scored run. Every rate comes with `n`, `low`/`high` (95%) and a `verdict`."""

    conditions: pd.DataFrame
    """model × task × condition cells."""
    tasks: pd.DataFrame
    """model × task cells (pooled over conditions), with `rank` and `tied_with` per task."""
    models: pd.DataFrame
    """model cells (pooled over tasks), with overall `rank`, `tied_with`, `frontier`, `params`."""
    validators: pd.DataFrame
    """Each validator's pass rate per model × task."""
    validators_by_condition: pd.DataFrame
    """Each validator's pass rate per model × task × condition."""
    pass_k: pd.DataFrame
    """pass^k and pass@k per model × task and k."""
    drops: pd.DataFrame
    """Drop under noise per model × task × kind × level."""
    spread: pd.DataFrame
    """Paraphrase spread per model × task."""
    margins: pd.DataFrame
    """Margin per model × task × noise axis."""
    pairs: pd.DataFrame
    """Paired comparisons per task (`scope` = `suite/task`) and overall (`scope` = `all`)."""
    recommendation: Recommendation
    attempts: Attempts
    """The journal's frames these tables were computed from (for run facts and policies)."""
    budgets: Budgets = field(default_factory=dict)
    """Each task's p95 latency budget (None: none)."""
    traffic: dict[tuple[str, str], float | None] = field(default_factory=dict)
    """Each task's `traffic` as its suite gives it (None: unset)."""
    order: list[str] = field(default_factory=list)
    """The models in the config's order (ties in a per-feature decision go to the earlier)."""
    suites: dict[str, Suite] = field(default_factory=dict)
    """The run's suite copies by name, loaded once for every later stage (fingerprints, guards)."""


def score_attempts(
    attempts: Attempts,
    targets: Targets,
    budgets: Budgets | None = None,
    params: dict[str, float | None] | None = None,
    alpha: float = ALPHA,
) -> Scores:
    """Every statistic of `attempts` against the task `targets`."""
    frame = attempts.frame
    conditions = with_share_intervals(cell_table(frame, CONDITION, targets), frame, CONDITION)
    tasks = with_share_intervals(cell_table(frame, TASK, targets), frame, TASK)
    models = with_share_intervals(cell_table(frame, MODEL, targets, tasks), frame, MODEL)
    pair_tables, task_bands = [], []
    for (suite, task), scope in frame.groupby(["suite", "task"], observed=True, sort=False):
        pairs = compare_pairs(outcome_matrix(scope), alpha).assign(scope=f"{suite}/{task}")
        pair_tables.append(pairs)
        rates = tasks[(tasks["suite"] == suite) & (tasks["task"] == task)].set_index("model")[
            "rate"
        ]
        bands = rank.rank_bands(rates, pairs)
        task_bands.append(bands.assign(suite=str(suite), task=str(task)))
    overall = compare_pairs(outcome_matrix(frame), alpha).assign(scope="all")
    pair_tables.append(overall)
    if task_bands:
        bands = pd.concat(task_bands, ignore_index=True)[
            ["model", "suite", "task", "rank", "tied_with"]
        ]
        tasks = tasks.merge(bands, on=["model", "suite", "task"], how="left")
    model_bands = rank.rank_bands(models.set_index("model")["rate"], overall)
    models = models.merge(model_bands[["model", "rank", "tied_with"]], on="model", how="left")
    sizes = pd.Series([(params or {}).get(str(m)) for m in models["model"]], dtype=float)
    models = models.assign(frontier=rank.pareto_frontier(models), params=sizes.to_numpy())
    validators = validator_table(frame, attempts.verdicts, TASK, targets)
    tests = drop_tests(frame, alpha)
    return Scores(
        conditions=conditions,
        tasks=tasks,
        models=models,
        validators=validators,
        validators_by_condition=validator_table(frame, attempts.verdicts, CONDITION, targets),
        pass_k=with_pass_k_intervals(pass_k_table(frame, TASK)),
        drops=with_tests(noise_drops(conditions), tests),
        spread=with_wordings_pooled(paraphrase_spread(conditions), frame),
        margins=with_drops(margins(conditions), tests),
        pairs=pd.concat(pair_tables, ignore_index=True),
        recommendation=rank.recommend(tasks, models, conditions, validators, budgets or {}),
        attempts=attempts,
        budgets=dict(budgets or {}),
    )


def score_run(folder: Path, alpha: float = ALPHA, suites: Sequence[Suite] | None = None) -> Scores:
    """Score the run directory `folder`; a folder that is not a run is a UserError. `suites`,
    the suites the run was started with in this process (its copies are those files), spare
    parsing the copies again; the copies are read when their names differ."""
    run_file = read_run_file(folder)
    if run_file is None:
        raise UserError("not a margin run directory (no run.json)", path=folder)
    models = [ModelSpec.model_validate(m) for m in run_file.get("models") or []]
    suites = _started_with(suites, run_file) or _suite_copies(folder, run_file)
    settings = RunSettings.model_validate(run_file.get("settings") or {})
    targets, budgets = task_targets(suites, settings)
    attempts = read_attempts(folder / str(run_file.get("journal") or JOURNAL_NAME))
    known = set(targets)
    frame = attempts.frame
    unknown = {
        f"{s}/{t}"
        for s, t in frame[["suite", "task"]].drop_duplicates().itertuples(index=False)
        if (str(s), str(t)) not in known
    }
    if unknown:
        raise UserError(
            f"the journal holds tasks its suites do not define: {', '.join(sorted(unknown))}",
            path=folder,
        )
    params = {m.name: m.param_count for m in models}
    scores = score_attempts(attempts, targets, budgets, params, alpha)
    traffic = {(suite.suite, task.id): task.traffic for suite in suites for task in suite.tasks}
    return replace(
        scores,
        traffic=traffic,
        order=[m.name for m in models],
        suites=dict(zip(run_file.get("suites") or {}, suites, strict=True)),
    )


def run_targets(folder: Path, run_file: dict[str, Any]) -> tuple[Targets, Budgets]:
    """The targets and latency budgets of the run directory `folder` (from its suite copies)."""
    settings = RunSettings.model_validate(run_file.get("settings") or {})
    return task_targets(_suite_copies(folder, run_file), settings)


def _started_with(suites: Sequence[Suite] | None, run_file: dict[str, Any]) -> list[Suite]:
    """`suites` in the run file's order when they are the run's suites by name, else []."""
    names = list(run_file.get("suites") or {})
    by_name = {suite.suite: suite for suite in suites or ()}
    return [by_name[name] for name in names] if names and set(names) == set(by_name) else []


def _suite_copies(folder: Path, run_file: dict[str, Any]) -> list[Suite]:
    names = run_file.get("suites") or {}
    suites = []
    for name in names:
        copy = folder / "suites" / f"{name}.yaml"
        if not copy.exists():
            raise UserError(f"the run's copy of suite {name!r} is missing", path=copy)
        suites.append(load_suite(copy))
    return suites
