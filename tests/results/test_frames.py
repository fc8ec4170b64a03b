"""`margin.load_results`: the frames equal `margin score --format csv` row for row, and
`--format parquet` writes the same table for Arrow readers."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import margin
from margin.cli.main import cli
from margin.results.frames import TABLES, ResultFrames, load_results
from tests.report.conftest import make_run
from tests.stats.records import record

VIEWS = {"task": "tasks", "condition": "conditions", "validator": "validators"}


def _attempt(model: str, case: int, passed: bool | None, repeat: int, variant: str) -> object:
    paraphrase = 1 if variant == "p1" else 0
    checks = None if passed is None else {"must_not_contain": passed, "max_words": case % 3 != 0}
    base = record(model, f"c{case}", passed, repeat=repeat, variant=variant, paraphrase=paraphrase,
                  checks=checks, latency=0.1 + case / 10, cost=0.0005 * (1 + case))  # fmt: skip
    # some failures pass every guard (silent), so the nullable silent columns hold numbers
    guards = None if passed is None else (passed or case % 2 == 0)
    return base.model_copy(update={"guards_passed": guards})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outcomes = {"small": "1101101x11", "large": "1111111110"}
    records = [
        _attempt(model, case, {"1": True, "0": False, "x": None}[ch], repeat, variant)
        for model, pattern in outcomes.items()
        for case, ch in enumerate(pattern)
        for variant in ("p0", "p1")
        for repeat in range(2)
        if not (ch == "0" and variant == "p1" and repeat == 1)
    ]
    return make_run(tmp_path_factory.mktemp("frames") / "run", records)


_CSV: dict[tuple[Path, str], str] = {}


def score_csv(run: Path, view: str) -> str:
    """`margin score RUN --format csv --by VIEW`, run once per run and view."""
    if (run, view) not in _CSV:
        result = CliRunner().invoke(cli, ["score", str(run), "--format", "csv", "--by", view])
        assert result.exit_code == 0, result.output
        _CSV[run, view] = result.output
    return _CSV[run, view]


@pytest.fixture(scope="module")
def frames(run: Path) -> ResultFrames:
    return load_results(run)


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_frames_equal_the_csv_row_for_row(run: Path, frames: ResultFrames, view: str) -> None:
    frame = frames.table(VIEWS[view])
    text = score_csv(run, view)
    assert frame.to_csv(index=False) == text  # the same columns, rows and values, as written
    from_csv = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == list(from_csv.columns)
    assert len(frame) == len(from_csv) > 0
    back = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    pd.testing.assert_frame_equal(back, from_csv)


def test_the_frames_are_typed_and_complete(run: Path) -> None:
    frames = margin.load_results(run)
    assert isinstance(frames, ResultFrames)
    assert margin.load_results is load_results
    for name in (*TABLES, "attempts", "features"):
        assert len(frames.table(name)) > 0, name
    assert not any(frames.table(name)[c].dtype == object
                   for name in ("tasks", "conditions") for c in frames.table(name).columns)  # fmt: skip
    tasks = frames.tasks.set_index("model")
    assert str(tasks["silent"].dtype) == "Int64" and str(tasks["silent_low"].dtype) == "float64"
    assert (
        tasks.loc["large", "silent"] == 0 and tasks.loc["small", "silent"] == 3
    )  # case c2, three attempts
    assert tasks.loc["small", "infra_errors"] == 4
    assert set(frames.conditions["condition"]) == {"p0", "p1"}
    assert sorted(frames.validators["validator"].unique()) == ["max_words", "must_not_contain"]
    attempts = frames.attempts
    assert len(attempts) == 2 * 10 * 2 * 2 - 3  # a failing case's second p1 repeat left out
    assert attempts["passed"].isna().sum() == 4  # infra errors: neither pass nor fail
    assert set(frames.features["task"]) == {"t"}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_parquet_holds_the_same_table(
    run: Path, frames: ResultFrames, tmp_path: Path, view: str
) -> None:
    out = tmp_path / f"{view}.parquet"
    args = ["score", str(run), "--format", "parquet", "--by", view, "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output == ""
    table = pd.read_parquet(out)
    frame = frames.table(VIEWS[view])
    assert list(table.columns) == list(frame.columns)
    assert table.to_csv(index=False) == score_csv(run, view)


def test_parquet_goes_to_stdout_as_bytes(run: Path) -> None:
    result = CliRunner().invoke(cli, ["score", str(run), "--format", "parquet"])
    assert result.exit_code == 0
    assert result.stdout_bytes.startswith(b"PAR1")
    table = pd.read_parquet(io.BytesIO(result.stdout_bytes))
    assert table.to_csv(index=False) == score_csv(run, "task")


def test_csv_and_json_can_go_to_a_file_and_tables_cannot(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "tasks.csv"
    result = CliRunner().invoke(cli, ["score", str(run), "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0 and result.output == ""
    assert out.read_text() == score_csv(run, "task")
    refused = CliRunner().invoke(cli, ["score", str(run), "--out", str(tmp_path / "x.txt")])
    assert refused.exit_code == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "--out writes --format json, csv or parquet" in refused.stderr
    assert not (tmp_path / "x.txt").exists()


def test_a_folder_that_is_not_a_run_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(margin.UserError):
        load_results(tmp_path)
