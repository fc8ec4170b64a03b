"""View data for the report: plain dicts, lists and charts prepared from results.json (and the
journal, read through its reader, for the drill-down of failing attempts). Templates receive
this, never runner objects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from margin.journal.records import AttemptRecord, read_journal
from margin.report.svg import Chart, Point, Series, render
from margin.results.document import Results
from margin.results.rows import PassKRow, TaskRow
from margin.stats.conditions import condition_name
from margin.stats.numbers import inside, percent, rate_with_interval
from margin.stats.phrases import mean_text

MAX_FAILURES = 400
"""Failing attempts shown in the drill-down (the page says how many were left out)."""
MAX_PER_CELL = 25
"""Failing attempts shown per model × task."""
MAX_TEXT = 4000
"""Characters of a prompt or an answer shown; the page says how many were cut."""


def model_pass_k(rows: list[PassKRow], repeats: int) -> dict[str, tuple[int, float, int]]:
    """Each model's pass^k at the largest k its cases reached (at most the run's `repeats`),
    pooled over all its cases: each task's mean weighted by its cases with at least k attempts,
    so pass^1 is the model's pass rate whenever its cases have equal judged attempts (a plain
    mean over tasks would let a 2-case task weigh as much as a 50-case one). Returns k, pass^k
    and the number of cases it is over."""
    top: dict[str, tuple[int, float, int]] = {}
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        k = min(max(r.k for r in mine), repeats)
        at_k = [r for r in mine if r.k == k]
        cases = sum(r.cases for r in at_k)
        if cases:
            top[model] = (k, sum(r.pass_hat_k * r.cases for r in at_k) / cases, cases)
    return top


@dataclass(frozen=True)
class Clip:
    """A long text cut for the page, with what was left out."""

    text: str
    cut: int


def clip(text: str | None, limit: int = MAX_TEXT) -> Clip:
    text = text or ""
    return Clip(text[:limit], max(0, len(text) - limit))


def capability_charts(results: Results) -> list[Markup]:
    """Per task: reliability (with interval bars) and partial credit against model size (or
    cost per 1,000 where a size is unknown), with the target line."""
    sizes = {m.model: m.params for m in results.models}
    costs = {m.model: m.cost_per_1000 for m in results.models}
    use_size = all(sizes.get(m.model) for m in results.models)
    charts = []
    by_task: dict[tuple[str, str], list[TaskRow]] = defaultdict(list)
    for row in results.tasks:
        by_task[(row.suite, row.task)].append(row)
    for (suite, task), rows in by_task.items():

        def x_of(model: str) -> float:
            value = sizes.get(model) if use_size else costs.get(model)
            return float(value or 0.0)

        rows = sorted(rows, key=lambda r: x_of(r.model))
        reliability = Series(
            "pass rate",
            [
                Point(x_of(r.model), r.rate, r.low, r.high, f"{r.model}: {_rate_label(r)}")
                for r in rows
            ],
        )
        partial = Series(
            "partial credit",
            [
                Point(x_of(r.model), r.partial, label=f"{r.model}: partial {_partial(r)}")
                for r in rows
            ],
            dashed=True,
        )
        ticks = [(x_of(r.model), r.model) for r in rows]
        target = rows[0].target if rows else None
        charts.append(
            render(
                Chart(
                    title=f"{suite}/{task}: reliability against model "
                    + ("size" if use_size else "cost"),
                    x_title="model size (parameters, log scale)"
                    if use_size
                    else "cost per 1,000 tasks ($)",
                    y_title="pass rate",
                    series=[reliability, partial],
                    target=target,
                    x_ticks=ticks,
                    log_x=use_size,
                )
            )
        )
    return charts


def margin_charts(results: Results) -> list[Markup]:
    """Per task and noise kind: pass rate against level (clean first) per model, the target
    line, and each model's margin ringed."""
    clean = {(c.model, c.suite, c.task): c for c in results.conditions if c.condition == "p0"}
    margins = {(m.model, m.suite, m.task, m.axis): m for m in results.margins}
    axes: dict[tuple[str, str, str], dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for row in results.conditions:
        if row.noise_kind != "clean":
            axes[(row.suite, row.task, row.noise_kind)][row.model].append(row)
    charts = []
    for (suite, task, kind), models in axes.items():
        levels = sorted({0.0, *(r.noise_level for rows in models.values() for r in rows)})
        position = {level: i for i, level in enumerate(levels)}
        series = []
        target = None
        for model, rows in models.items():
            base = clean.get((model, suite, task))
            margin = margins.get((model, suite, task, kind))
            cells = ([base] if base is not None else []) + sorted(rows, key=lambda r: r.noise_level)
            points = []
            for cell in cells:
                level = 0.0 if cell.noise_kind == "clean" else cell.noise_level
                target = cell.target
                marked = margin is not None and margin.margin is not None and margin.margin == level
                points.append(
                    Point(
                        position[level],
                        cell.rate,
                        cell.low,
                        cell.high,
                        f"{model} at {kind} {level:g}: {_rate_label(cell)}",
                        marked=marked,
                    )
                )
            series.append(Series(model, points))
        ticks = [
            (float(i), "clean" if level == 0 else f"{level:g}") for i, level in enumerate(levels)
        ]
        charts.append(
            render(
                Chart(
                    title=f"{suite}/{task}: pass rate under {kind} (ring = margin)",
                    x_title=f"{kind} level",
                    y_title="pass rate",
                    series=series,
                    target=target,
                    x_ticks=ticks,
                )
            )
        )
    return charts


def pareto_charts(results: Results) -> list[Markup]:
    """Reliability (lower bound) against cost per 1,000 and against p95 latency; frontier
    models ringed and joined."""
    charts = []
    for field, title in (
        ("cost_per_1000", "cost per 1,000 tasks ($)"),
        ("latency_p95", "p95 latency (s)"),
    ):
        rows = [m for m in results.models if getattr(m, field) is not None]
        if not rows:
            continue
        series = [
            Series(
                m.model,
                [
                    Point(
                        float(getattr(m, field)),
                        m.low,
                        label=f"{m.model}: lower bound of {_rate_label(m)}",
                        marked=m.frontier,
                    )
                ],
            )
            for m in rows
        ]
        frontier = sorted((m for m in rows if m.frontier), key=lambda m: float(getattr(m, field)))
        if len(frontier) > 1:
            series.append(
                Series(
                    "frontier",
                    [Point(float(getattr(m, field)), m.low) for m in frontier],
                    dashed=True,
                    color="#777",
                )
            )
        charts.append(
            render(
                Chart(
                    title=f"Pareto: reliability (lower bound) against {title}",
                    x_title=title,
                    y_title="reliability, lower bound",
                    series=series,
                    connect=True,
                )
            )
        )
    return charts


def failures(
    journal: Path, results: Results, failing: list[AttemptRecord] | None = None
) -> dict[str, Any]:
    """Failing attempts for the drill-down: at most MAX_PER_CELL per model × task and
    MAX_FAILURES in all, with the counts of what was left out (`failing`: the journal's
    `latest_failures`, when already read with the answers)."""
    shown: list[dict[str, Any]] = []
    per_cell: dict[tuple[str, str, str], int] = defaultdict(int)
    failing = latest_failures(journal) if failing is None else failing
    for record in failing:
        cell = (record.model, record.suite, record.task)
        if per_cell[cell] >= MAX_PER_CELL or len(shown) >= MAX_FAILURES:
            continue
        per_cell[cell] += 1
        shown.append(_failure(record))
    return {
        "shown": shown,
        "total": len(failing),
        "left_out": len(failing) - len(shown),
        "models": sorted({f["model"] for f in shown}),
        "tasks": sorted({f["task"] for f in shown}),
        "conditions": sorted({f["condition"] for f in shown}),
        "validators": sorted({v for f in shown for v in f["validators"].split()}),
    }


def latest_failures(journal: Path) -> list[AttemptRecord]:
    """The attempts whose latest record failed (it, or one of its validators: an unscored
    attempt with a failing verdict is shown too), in the order their keys first appear. Read
    through the journal's reader; only failing records are kept in memory."""
    latest: dict[str, AttemptRecord | None] = {}
    for record in read_journal(journal):
        note_failure(latest, record)
    return [record for record in latest.values() if record is not None]


def note_failure(latest: dict[str, AttemptRecord | None], record: AttemptRecord) -> None:
    """Keep `record` as its key's latest failure, or forget the key's earlier one: a later
    record replaces a failure."""
    failed = record.passed is False or any(not v.passed for v in record.verdicts)
    latest[record.key] = record if failed else None


def _failure(record: AttemptRecord) -> dict[str, Any]:
    failed = [v for v in record.verdicts if not v.passed]
    return {
        "model": record.model,
        "task": f"{record.suite}/{record.task}",
        "case": record.case,
        "variant": record.variant,
        "repeat": record.repeat,
        "condition": condition_name(record.paraphrase, record.noise_kind, record.noise_level),
        "messages": [{"role": m.role, "content": clip(m.content)} for m in record.messages],
        "output": clip(record.output),
        "failed": [{"validator": v.validator, "reason": clip(v.reason, 500)} for v in failed],
        "validators": " ".join(sorted({v.validator for v in failed})),
        "truncated": record.truncated,
    }


def _partial(row: Any) -> str:
    return mean_text(row.partial, row.partial_low, row.partial_high, row.cases)


def spread_rows(results: Results) -> list[dict[str, Any]]:
    """The paraphrase spread with each figure's n and interval: MaxP and MinP are the best and
    the worst wording's condition cells, AvgP the wordings pooled (clustered by case)."""
    rows = []
    for s in results.paraphrase_spread:
        wordings = [
            c
            for c in results.conditions
            if (c.model, c.suite, c.task) == (s.model, s.suite, s.task)
            and c.noise_kind == "clean"
            and c.n > 0
        ]
        best = max(wordings, key=lambda c: c.rate or 0.0, default=None)
        worst = next((c for c in wordings if c.condition == s.worst), None)
        if s.avg_n is not None and s.avg_passes is not None:
            avg = rate_with_interval(s.avg_passes, s.avg_n, s.avg_low or 0.0, s.avg_high or 1.0)
        else:
            avg = f"{percent(s.avg_p)} (no n in this results.json)"
        rows.append(
            {
                **s.model_dump(),
                "max_text": _cell_text(best, s.max_p),
                "avg_text": avg,
                "min_text": _cell_text(worst, s.min_p),
            }
        )
    return rows


def _cell_text(cell: Any, value: float) -> str:
    if cell is None:
        return f"{percent(value)} (no n in this results.json)"
    return f"{rate_with_interval(cell.passes, cell.n, cell.low, cell.high)} ({cell.condition})"


def _rate_label(row: Any) -> str:
    return f"{rate_with_interval(row.passes, row.n, row.low, row.high)} {row.verdict}"


def policy_runs(results: Results) -> list[dict[str, Any]]:
    """Each policy run for real beside its estimate, and whether the measured rate falls
    inside the estimate's interval."""
    estimates = {(p.policy, p.suite, p.task): p for p in results.policies}
    rows = []
    for run in results.policy_runs:
        estimate = estimates.get((run.policy, run.suite, run.task))
        bounds = (None, None) if estimate is None else (estimate.low, estimate.high)
        silent = "–"
        if run.silent is not None and run.guarded_n:
            low, high = run.silent_low or 0.0, run.silent_high or 1.0
            silent = rate_with_interval(run.silent, run.guarded_n, low, high)
        rows.append(
            {
                "run": run,
                "estimate": estimate,
                "inside": inside(run.rate, *bounds),
                "silent": silent,
            }
        )
    return rows


def policy_chart(results: Results) -> Markup | None:
    """Policies beside bare models: the worst task's lower bound against mean cost per 1,000;
    the frontier (nothing cheaper is at least as reliable) ringed. An upper bound (`on=any`, or
    guards not recorded) is no policy a product can ship: left out."""
    shippable = [p for p in results.policies if p.upper_bound is None]
    if not shippable:
        return None
    points: dict[str, tuple[float, float]] = {}
    labels: dict[str, str] = {}
    for name, rows in _group(shippable, lambda r: r.policy).items():
        points[name] = (_mean_cost(r.cost_per_1000 for r in rows), min(r.low for r in rows))
        worst = min(rows, key=lambda r: r.low)
        text = mean_text(worst.rate, worst.low, worst.high, worst.cases)
        labels[name] = f"{name}: worst task {worst.suite}/{worst.task} {text}"
    for name, tasks in _group(results.tasks, lambda r: r.model).items():
        points[name] = (_mean_cost(r.cost_per_1000 for r in tasks), min(r.low for r in tasks))
        worst = min(tasks, key=lambda r: r.low)
        labels[name] = f"{name}: worst task {worst.suite}/{worst.task} {_rate_label(worst)}"
    frontier = {
        name
        for name, (cost, low) in points.items()
        if not any(
            (c <= cost and lo >= low) and (c < cost or lo > low) for c, lo in points.values()
        )
    }
    series = [
        Series(
            name,
            [
                Point(
                    cost,
                    low,
                    label=labels[name],
                    marked=name in frontier,
                )
            ],
        )
        for name, (cost, low) in points.items()
    ]
    return render(
        Chart(
            title="Policies and models: worst-task reliability (lower bound) against cost",
            x_title="cost per 1,000 tasks ($, mean over tasks)",
            y_title="worst task, lower bound",
            series=series,
        )
    )


def _group(rows: Any, key: Any) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def _mean_cost(values: Any) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else 0.0
