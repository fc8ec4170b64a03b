"""`margin score`: the statistics, the rank bands and the recommendation of a run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from margin.cli.options import option, run_dir_argument
from margin.decide.scores import score_run
from margin.decide.summary import decision_lines, recommendation_lines, verdicts_of
from margin.errors import UserError
from margin.results.frames import typed
from margin.results.rows import ConditionRow, Row, TaskRow, ValidatorRow
from margin.results.score import results_of
from margin.stats.numbers import interval, money, percent, seconds
from margin.stats.phrases import mean_text, share_text, silent_text, task_verdicts_text

VIEWS = ("task", "condition", "validator")


@click.command("score")
@run_dir_argument()
@option(
    "--format",
    "output",
    env="MARGIN_SCORE_FORMAT",
    type=click.Choice(["table", "json", "csv", "parquet"]),
    default="table",
    show_default=True,
    help="Tables for people, or JSON / CSV / Parquet for tools.",
)
@option(
    "--by",
    "view",
    env="MARGIN_SCORE_BY",
    type=click.Choice(VIEWS),
    default="task",
    show_default=True,
    help="One row per model × task, × condition, or × validator.",
)
@option(
    "--out",
    "out",
    env="MARGIN_SCORE_OUT",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the output to FILE instead of stdout (parquet: FILE, or stdout redirected).",
)
def command(run_dir: Path, output: str, view: str, out: Path | None) -> None:
    """Score RUN_DIR: reliability with 95% intervals and verdicts against each task's target,
    rank bands (models the data cannot separate share a rank), and the recommendation.

    Reads only the run directory (run.json, its suite copies, journal.jsonl); calls no model.
    `--format json` prints the same document as results.json (`margin schema --kind results`);
    `csv` and `parquet` the `--by` table (`margin.load_results` gives the same frames).
    """
    if out is not None and output == "table":
        raise UserError("--out writes --format json, csv or parquet; tables go to the terminal")
    scores = score_run(run_dir)
    if output == "parquet":
        _write_parquet(typed(_view(scores, view), _ROWS[view]), out)
        return
    if output == "json":
        results = results_of(run_dir, scores)  # the score stage's document, not written
        _emit(results.model_dump_json(indent=2) + "\n", out)
    elif output == "csv":
        _emit(_view(scores, view).to_csv(index=False), out)
    else:
        results = results_of(run_dir, scores)
        for line in decision_lines(results.features, results.areas, results.mix):
            click.echo(line)
        _print_tables(scores, view)


_ROWS: dict[str, type[Row]] = {
    "task": TaskRow,
    "condition": ConditionRow,
    "validator": ValidatorRow,
}


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def _write_parquet(frame: Any, out: Path | None) -> None:
    """Parquet to `out`, or as bytes to stdout when it is not a terminal."""
    if out is not None:
        frame.to_parquet(out, index=False)
        return
    if sys.stdout.isatty():
        raise UserError("parquet is binary: give --out FILE or redirect stdout")
    sys.stdout.flush()
    sys.stdout.buffer.write(frame.to_parquet(index=False))
    sys.stdout.buffer.flush()


def _view(scores: Any, view: str) -> Any:
    return {"task": scores.tasks, "condition": scores.conditions, "validator": scores.validators}[
        view
    ]


def _print_tables(scores: Any, view: str) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    models = Table(title="Models (all tasks pooled)", caption=_CAPTION)
    for name in ["rank", "model", "tied with", "reliability", "95% interval", "tasks vs target",
                 "silent", "partial", "cost / 1,000", "p50", "p95", "infra errors",
                 "Pareto"]:  # fmt: skip
        models.add_column(
            name,
            justify="left" if name in {"model", "tied with", "tasks vs target"} else "right",
            no_wrap=name == "tasks vs target",  # a verdict count read whole, never broken
        )
    for row in scores.models.sort_values(["rank", "rate"], ascending=[True, False]).to_dict(
        "records"
    ):
        models.add_row(
            str(row["rank"]),
            str(row["model"]),
            row["tied_with"] or "",
            f"{row['passes']}/{row['n']} {percent(row['rate'], row['passes'], row['n'])}",
            interval(row["low"], row["high"]),
            # the pooled interval beside it is not what decides: each task against its target
            task_verdicts_text(verdicts_of(scores.tasks, str(row["model"])), noun=False),
            _silent(row),
            _partial(row),
            money(row["cost_per_1000"]),
            seconds(row["latency_p50"]),
            seconds(row["latency_p95"]),
            str(row["infra_errors"]),
            "frontier" if row["frontier"] else "",
        )
    console.print(models)
    console.print(_detail_table(scores, view))
    for line in recommendation_lines(scores):
        console.print(line, highlight=False, markup=False)


_CAPTION = (
    "reliability = passes / judged attempts (infra errors excluded); interval: Clopper–Pearson"
    " on the effective n (clustered by case); rank: 1 + models significantly better (mid-p McNemar,"
    " Holm). tasks vs target: each task's verdict against its own target; the pooled"
    " interval decides none of them. silent: failures every production guard let through"
    " (only a check against the expected answer caught them), of the judged attempts."
    " partial, pass^k: means over cases with their interval over cases."
)


def _silent(row: dict[str, Any]) -> str:
    return silent_text(row.get("silent"), row.get("guarded_n"), row.get("silent_low"),
                       row.get("silent_high"))  # fmt: skip


def _partial(row: dict[str, Any]) -> str:
    return mean_text(row["partial"], row.get("partial_low"), row.get("partial_high"), row["cases"])


def _detail_table(scores: Any, view: str) -> Any:
    frame = _view(scores, view)
    title = {"task": "By task", "condition": "By condition", "validator": "By validator"}[view]
    table = Table(title=f"{title} (95% intervals; verdict against the task's target)")
    label = {"task": None, "condition": "condition", "validator": "validator"}[view]
    columns = ["model", "suite/task", *([label] if label else []), "reliability", "95% interval",
               "target", "verdict", "new cases to settle (4 in 5)",
               *(["silent"] if view != "validator" else [])]  # fmt: skip
    if view == "task":
        columns[1:1] = ["rank"]
        columns += ["partial", "pass^k", "consistency"]
    for name in columns:
        table.add_column(name)
    pass_k = _last_pass_k(scores)
    for row in frame.to_dict("records"):
        more = row.get("more_cases")
        cells = [
            str(row["model"]),
            f"{row['suite']}/{row['task']}",
            *([str(row[label])] if label else []),
            f"{row['passes']}/{row['n']} {percent(row['rate'], row['passes'], row['n'])}",
            interval(row["low"], row["high"]),
            f"{row['target']:g}",
            str(row["verdict"]),
            "" if more is None or more != more else f"≈ {int(more):,}",
            *([_silent(row)] if view != "validator" else []),
        ]
        if view == "task":
            cells.insert(1, str(row["rank"]))
            at_k = pass_k.get((row["model"], row["suite"], row["task"]))
            consistency = (row["consistency"], row["consistency_low"], row["consistency_high"])
            cells += [
                _partial(row),
                "–" if at_k is None else f"k={at_k[0]}: {at_k[1]}",
                share_text(*consistency, row["cases"]),
            ]
        table.add_row(*cells)
    return table


def _last_pass_k(scores: Any) -> dict[tuple[str, str, str], tuple[int, str]]:
    """pass^k at the largest k every case of a model × task reached, with its interval."""
    result: dict[tuple[str, str, str], tuple[int, str]] = {}
    everyone: dict[tuple[str, str, str], int] = {}
    for row in scores.pass_k.sort_values("k").to_dict("records"):
        key = (str(row["model"]), str(row["suite"]), str(row["task"]))
        everyone.setdefault(key, int(row["cases"]))
        if int(row["cases"]) == everyone[key]:
            low, high = row["pass_hat_k_low"], row["pass_hat_k_high"]
            result[key] = (int(row["k"]), mean_text(row["pass_hat_k"], low, high, row["cases"]))
    return result
