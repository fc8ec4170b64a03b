"""The report rendered from a run's results.json: index.html, summary.md and junit.xml.

The score stage (`margin.results.score`) writes results.json; one Jinja Environment (autoescape
on, StrictUndefined) renders view data prepared from it, and the journal is read, through its
reader, only for the drill-down of failing attempts. Nothing here calls a model. The page is one
self-contained file: inline CSS, inline SVG, one small inline script (sorting and filtering)
allowed by its hash in the Content-Security-Policy, which also forbids every request — so model
outputs and suite text, shown escaped, cannot run or fetch.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME, AttemptRecord
from margin.journal.rundir import write_atomically
from margin.report import answers, views
from margin.report.changes import CHANGES_NAME, changes
from margin.report.junit import junit_xml
from margin.results.document import RESULTS_NAME, Results
from margin.stats import numbers, phrases
from margin.stats.phrases import task_verdicts_text

SUMMARY_LIMIT = 1_000_000
"""GitHub's step-summary limit is 1 MiB: summary.md stays under it."""


@dataclass(frozen=True)
class ReportFiles:
    """What `render_report` wrote."""

    html: Path
    markdown: Path
    results: Path
    junit: Path
    pages: list[Path] = field(default_factory=list)
    """answers-N.html: every answer side by side (`--full`)."""
    changes: Path | None = None
    """changes.html: what flipped since a baseline (`--baseline`)."""


def environment(templates: Path | None = None, markdown: bool = False) -> Environment:
    """The Jinja Environment: a user's template folder first, then margin's own. HTML is
    autoescaped; Markdown (`markdown`) is not — an apostrophe stays an apostrophe — but every
    value has `<`, `>` and `&` as entities and `|` escaped, so no text from a suite or an answer
    becomes markup or breaks a table. margin's own (no `templates`) is built once per process
    and kind, so its compiled templates are reused."""
    if templates is None:
        return _margins(markdown)
    if not templates.is_dir():
        raise UserError("--templates must be a folder of *.j2 templates", path=templates)
    return _environment([FileSystemLoader(str(templates))], markdown)


@lru_cache(maxsize=2)
def _margins(markdown: bool) -> Environment:
    return _environment([], markdown)


def _environment(loaders: list[Any], markdown: bool) -> Environment:
    loaders = [*loaders, PackageLoader("margin.report", "templates")]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=not markdown,
        finalize=markdown_safe if markdown else None,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        percent=lambda v, *a: "–" if v is None else numbers.percent(v, *a),
        interval=numbers.interval,
        money=numbers.money,
        seconds=numbers.seconds,
        rate=lambda r: numbers.rate_with_interval(r.passes, r.n, r.low, r.high),
        silent=lambda r: phrases.silent_text(r.silent, r.guarded_n, r.silent_low, r.silent_high),
        partial=lambda r: phrases.mean_text(r.partial, r.partial_low, r.partial_high, r.cases),
        consistency=lambda r: phrases.share_text(
            r.consistency, r.consistency_low, r.consistency_high, r.cases
        ),
        sort_value=lambda v: "" if v is None else v,
        counted=phrases.counted_text,
        mean_over=phrases.mean_over_text,
    )
    return env


def write_report(
    results: Results,
    folder: Path,
    target: Path,
    templates: Path | None = None,
    full: bool = False,
    baseline: Path | None = None,
) -> ReportFiles:
    """Render index.html, summary.md and junit.xml into `target` from `results` (the run's
    results.json, already there) and, for the answers, the journal of the run `folder`; the
    --full pages and the baseline's changes.html when asked."""
    env = environment(templates)
    read = answers.read_latest(folder / JOURNAL_NAME)  # one pass for answers and failures
    tables = answers.side_by_side(results, read)
    pages = answers.split_pages(tables) if full else []
    page_names = [f"answers-{i}.html" for i in range(1, len(pages) + 1)]
    changes_html = target / CHANGES_NAME if baseline is not None else None
    shown = answers.capped(tables)
    view = page_view(results, folder, read.failing) | {
        "answers": shown,
        "answer_conditions": answers.conditions_of(tables),
        "answer_pages": page_names,
        "answer_cap": answers.MAX_ROWS_PER_TASK,
        "answers_capped": any(t.left_out.rows for t in shown),
        "changes_page": CHANGES_NAME if changes_html else None,
    }
    html = target / "index.html"
    write_atomically(html, render_page(env, view))
    for number, (name, page) in enumerate(zip(page_names, pages, strict=True), start=1):
        write_atomically(
            target / name, render_answers_page(env, results.run, page, number, page_names)
        )
    if changes_html is not None and baseline is not None:
        write_atomically(changes_html, render_changes(env, results, read, baseline))
    markdown = target / "summary.md"
    write_atomically(markdown, render_summary(environment(templates, markdown=True), view))
    junit = target / "junit.xml"
    write_atomically(junit, junit_xml(results))
    return ReportFiles(
        html=html,
        markdown=markdown,
        results=target / RESULTS_NAME,
        junit=junit,
        pages=[target / name for name in page_names],
        changes=changes_html,
    )


def page_view(results: Results, folder: Path, failing: list[AttemptRecord]) -> dict[str, Any]:
    """Everything the templates show, prepared (`failing`: the journal's latest failures, read
    with the answers)."""
    journal = folder / JOURNAL_NAME
    top_k = views.model_pass_k(results.pass_k, results.run.repeats or 1)
    return {
        "results": results,
        "run": results.run,
        "recommendation": results.recommendation,
        "models": sorted(results.models, key=lambda m: (m.rank, -(m.rate or 0))),
        "tasks": results.tasks,
        "top_k": top_k,
        "top_k_text": {m: phrases.pooled_mean_text(v, cases) for m, (_, v, cases) in top_k.items()},
        "model_verdicts": {
            m.model: task_verdicts_text(
                [t.verdict for t in results.tasks if t.model == m.model], noun=False
            )
            for m in results.models
        },
        "task_verdicts": {
            m.model: task_verdicts_text([t.verdict for t in results.tasks if t.model == m.model])
            for m in results.models
        },
        "capability": views.capability_charts(results),
        "margin_charts": views.margin_charts(results),
        "pareto": views.pareto_charts(results),
        "policy_chart": views.policy_chart(results),
        "policy_runs": views.policy_runs(results),
        "spread": views.spread_rows(results),
        "margins": results.margins,
        "validators": results.validators,
        "validators_by_condition": results.validators_by_condition,
        "failures": views.failures(journal, results, failing),
        "results_name": RESULTS_NAME,
    }


def compile_templates() -> None:
    """Compile margin's own page, script and summary templates now (kept with their
    Environment): the scorer of `margin run` does it while the calls run."""
    for name in ("index.html.j2", "page.js.j2"):
        environment().get_template(name)
    environment(markdown=True).get_template("summary.md.j2")


def markdown_safe(value: Any) -> Any:
    """A value as Markdown text: `<`, `>`, `&` as entities, `|` escaped (see `environment`)."""
    if not isinstance(value, str):
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def page_script(env: Environment) -> dict[str, str]:
    """margin's one script (sorting, filtering) and its hash for the Content-Security-Policy."""
    script = env.get_template("page.js.j2").render()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return {"script": script, "script_hash": f"sha256-{digest}"}


def render_page(env: Environment, view: dict[str, Any]) -> str:
    return env.get_template("index.html.j2").render(**view, **page_script(env))


def render_answers_page(
    env: Environment, run: Any, tables: list[answers.TaskAnswers], number: int, names: list[str]
) -> str:
    """Page `number` (from 1) of the --full answers side by side."""
    return env.get_template("answers_page.html.j2").render(
        run=run,
        answers=tables,
        answer_conditions=answers.conditions_of(tables),
        page=number,
        pages=names,
        **page_script(env),
    )


def render_changes(
    env: Environment, results: Results, read: answers.LatestAnswers, baseline: Path
) -> str:
    """changes.html: what flipped since `baseline`, answer beside answer (`read`: the run's
    journal as `write_report` read it)."""
    return env.get_template("changes.html.j2").render(
        run=results.run,
        baseline_name=str(baseline),
        models=changes(results, read, baseline),
        **page_script(env),
    )


def render_summary(env: Environment, view: dict[str, Any]) -> str:
    text = env.get_template("summary.md.j2").render(**view)
    if len(text.encode()) > SUMMARY_LIMIT:
        cut = text.encode()[: SUMMARY_LIMIT - 200].decode(errors="ignore")
        text = cut + "\n\n… (cut to fit a CI job summary; see index.html)\n"
    return text
