"""`margin judge-check`: measure a judge validator against human-labelled examples."""

from __future__ import annotations

from pathlib import Path

import click

from margin.cli.options import config_option, models_option, option
from margin.config import RunSettings, default_cache_dir, load_models, load_run_settings
from margin.journal.rundir import write_atomically
from margin.judges.check import load_labels, run_check
from margin.judges.trust import JudgeCheck, check_path
from margin.suite.load import load_suite


@click.command("judge-check")
@click.argument("suite", type=click.Path(path_type=Path))
@option(
    "--labels",
    env="MARGIN_LABELS",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Human-labelled examples (suite, task, examples: id, vars, output, human: pass|fail).",
)
@models_option()
@config_option()
@option("--judge", "judge_name", env="MARGIN_JUDGE", metavar="NAME", help="Judge model to check.")
@option("--repeats", env="MARGIN_JUDGE_REPEATS", type=click.IntRange(1, 25), help="Judge repeats.")
@option("--out", env="MARGIN_OUT", type=click.Path(path_type=Path), help="Check file to write.")
@option("--no-cache", env="MARGIN_NO_CACHE", is_flag=True, help="Neither read nor write the cache.")
def command(
    suite: Path,
    labels: Path,
    models_path: str,
    config_paths: tuple[str, ...],
    judge_name: str | None,
    repeats: int | None,
    out: Path | None,
    no_cache: bool,
) -> None:
    """Grade the labelled outputs of LABELS with SUITE's judge validator and compare with the
    people's verdicts: agreement, Cohen's κ with its 95% interval, false-pass and false-fail
    rates. Writes the check beside the labels (NAME.check.json) unless --out; a run whose judge
    names these labels carries it into its report, where a judge below run.judge.min_kappa is
    flagged and cannot decide a gate.
    """
    settings, result = check_judge(
        suite, labels, models_path, config_paths, judge_name, repeats, no_cache
    )
    target = out or check_path(labels)
    write_atomically(target, result.model_dump_json(indent=2) + "\n")
    _print_check(result, settings)
    click.echo(f"check written: {target}")


def check_judge(
    suite: Path,
    labels: Path,
    models_path: str,
    config_paths: tuple[str, ...],
    judge_name: str | None,
    repeats: int | None,
    no_cache: bool,
) -> tuple[RunSettings, JudgeCheck]:
    """The run settings (with `repeats` for the judge) and the check of the labels file."""
    loaded = load_suite(suite)
    checked = load_labels(labels)
    if checked.suite != loaded.suite:
        raise click.UsageError(f"the labels are for suite {checked.suite!r}, not {loaded.suite!r}")
    settings = load_run_settings([models_path, *config_paths])
    if repeats is not None:
        settings = settings.model_copy(
            update={"judge": settings.judge.model_copy(update={"repeats": repeats})}
        )
    judges = load_models(models_path)
    cache = None if no_cache else default_cache_dir()
    return settings, run_check(loaded, checked, judges, settings, judge_name, cache)


def _print_check(result: JudgeCheck, settings: RunSettings) -> None:
    (hp, hf), (fp, ff) = result.matrix
    kappa = "undefined" if result.kappa is None else f"{result.kappa:.2f}"
    low, high = result.kappa_low, result.kappa_high
    span = "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
    click.echo(f"judge {result.judge} on {result.suite}/{result.task} ({result.validator}):")
    click.echo(
        f"  {result.scored} of {result.examples} examples scored ({result.unscored} unscored);"
        f" agreement {_share(result.agreement)}; Cohen's κ {kappa}{span}"
    )
    click.echo(f"  human pass: judge pass {hp}, judge fail {hf};  human fail: judge pass {fp},"
               f" judge fail {ff}")  # fmt: skip
    click.echo(
        f"  false-pass rate {_share(result.false_pass_rate)} (of the human fails);"
        f" false-fail rate {_share(result.false_fail_rate)} (of the human passes)"
    )
    if result.self_agreement is not None:
        click.echo(f"  self-agreement over repeats {_share(result.self_agreement)}")
    floor = settings.judge.min_kappa
    trusted = result.kappa is not None and result.kappa >= floor
    verdict = "trusted" if trusted else "not trusted: flagged in reports, cannot decide a gate"
    click.echo(f"  min_judge_kappa {floor}: {verdict}")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
