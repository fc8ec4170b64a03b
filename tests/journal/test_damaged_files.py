"""Damaged files downstream of the run — results.json, the journal, run.json — each give one
line naming the file (and line where it makes sense), exit 2, print no traceback, and leave no
temporary file behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from margin.report import render_report
from tests.conftest import one_error_line, run_cli
from tests.report.conftest import make_run
from tests.stats.records import outcomes

DEEP = 100_000


def fixture_run(folder: Path, results: bool = True) -> Path:
    """A run directory of model m on s/t (four cases), with its results.json if `results`."""
    make_run(folder, outcomes("m", "1101"))
    if results:
        render_report(folder)
    return folder


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def damage_results(folder: Path, change) -> Path:  # type: ignore[no-untyped-def]
    path = folder / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# -- results.json ------------------------------------------------------------------------------


def test_gate_on_results_nested_100000_deep(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    path = run / "results.json"
    path.write_text("[" * DEEP + "]" * DEEP, encoding="utf-8")
    before = files_in(run)
    line = one_error_line(run_cli("gate", str(run)), f"{path}:1: ")
    assert "nested" in line
    assert files_in(run) == before


def test_deep_results_through_the_real_console_script(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    path = run / "results.json"
    path.write_text('{"results_version": 2, "run": ' + "[" * DEEP + "]" * DEEP + "}")
    for args in (["gate", str(run)], ["gate", str(run), "--baseline", str(path)]):
        proc = subprocess.run(
            [sys.executable, "-m", "margin.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {path}:1: ")


SCHEMA_DAMAGE = [
    ("models-not-a-list", lambda d: d.update(models="notalist"), "models: ", "valid list"),
    ("run-missing", lambda d: d.pop("run"), "run: ", "Field required"),
    (
        "task-n-not-a-number",
        lambda d: d["tasks"][0].update(n="many"),
        "tasks[0].n: ",
        "valid integer",
    ),
    (
        "unknown-field",
        lambda d: d["models"][0].update(colour="red"),
        "models[0].colour: ",
        "Extra inputs",
    ),
    (
        "suite-name-wrong-type",
        lambda d: d["run"]["suites"][0].update(name=[1]),
        "run.suites[0].name: ",
        "valid string",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "field", "message"), SCHEMA_DAMAGE, ids=[c[0] for c in SCHEMA_DAMAGE]
)
def test_gate_on_schema_invalid_results_names_the_field(
    tmp_path: Path, name: str, change, field: str, message: str
) -> None:
    run = fixture_run(tmp_path / "run")
    path = damage_results(run, change)
    line = one_error_line(run_cli("gate", str(run)), f"{path}: {field}")
    assert message in line


RAW_DAMAGE = [
    ("truncated", b'{"results_version": 2, "run": {', 1, "EOF"),
    ("syntax-on-line-3", b'{\n "results_version": 2,\n "run": ]\n}', 3, "expected value"),
    ("empty", b"", 1, "EOF"),
    ("not-utf8", b'{"results_version": 2, "x": "\xff\xfe"}', 1, "UTF-8"),
    ("a-list", b"[1, 2]", None, "results version None"),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "message"), RAW_DAMAGE, ids=[c[0] for c in RAW_DAMAGE]
)
def test_gate_on_unreadable_results(
    tmp_path: Path, name: str, content: bytes, line: int | None, message: str
) -> None:
    run = fixture_run(tmp_path / "run")
    path = run / "results.json"
    path.write_bytes(content)
    where = f"{path}: " if line is None else f"{path}:{line}: "
    assert message in one_error_line(run_cli("gate", str(run)), where)


def test_gate_on_a_damaged_baseline_results_file(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    base = fixture_run(tmp_path / "base")
    path = damage_results(base, lambda d: d.update(models="notalist"))
    result = run_cli("gate", str(run), "--baseline", str(path))
    assert "valid list" in one_error_line(result, f"{path}: models: ")


def test_gate_when_results_json_is_a_directory(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    (run / "results.json").unlink()
    (run / "results.json").mkdir()
    before = files_in(run)
    line = one_error_line(run_cli("gate", str(run)), f"{run / 'results.json'}: ")
    assert line.endswith(": cannot read: Is a directory")  # not Python's "[Errno 21] …: '/…'"
    assert files_in(run) == before


def test_report_when_results_json_is_a_directory_leaves_nothing_behind(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    (run / "results.json").mkdir()
    before = files_in(run)
    line = one_error_line(run_cli("report", str(run)), f"{run / 'results.json'}: ")
    assert "directory" in line
    assert files_in(run) == before  # no .results.json.* temp file, no half a report


def test_an_interrupted_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from margin.journal import rundir

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rundir.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rundir.write_atomically(tmp_path / "results.json", "{}")
    assert files_in(tmp_path) == set()


def test_report_into_an_out_folder_that_is_a_file(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    out = tmp_path / "out"
    out.write_text("not a folder", encoding="utf-8")
    before = files_in(tmp_path)
    one_error_line(run_cli("report", str(run), "--out", str(out)), f"{out}: ")
    assert files_in(tmp_path) == before


def test_gate_when_its_output_folder_is_a_file(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    (run / "gate").write_text("not a folder", encoding="utf-8")
    before = files_in(run)
    one_error_line(run_cli("gate", str(run)), f"{run / 'gate'}: ")
    assert files_in(run) == before


# -- the journal -------------------------------------------------------------------------------


def damage_journal(folder: Path, line: int, old: bytes, new: bytes) -> Path:
    """Replace `old` by `new` in the journal's `line` (1-based)."""
    path = folder / "journal.jsonl"
    lines = path.read_bytes().split(b"\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_bytes(b"\n".join(lines))
    return path


# Bad bytes in a field statistics read (Arrow parses it) and in one they skip (the answer).
WHERE = {"case": (b'"case":"c2"', b'"case":"c\xff2"'), "output": (b'"answer"', b'"an\xe9swer"')}


@pytest.mark.parametrize("field", sorted(WHERE))
@pytest.mark.parametrize("command", ["score", "report", "gate"])
def test_a_journal_that_is_not_utf8(tmp_path: Path, command: str, field: str) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    journal = damage_journal(run, 3, *WHERE[field])
    before = files_in(run)
    line = one_error_line(run_cli(command, str(run)), f"{journal}:3: ")
    assert "not UTF-8" in line
    assert files_in(run) == before


def test_a_damaged_journal_leaves_no_report_folder_behind(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    journal = damage_journal(run, 1, *WHERE["output"])
    out = tmp_path / "new" / "report"
    one_error_line(run_cli("report", str(run), "--out", str(out)), f"{journal}:1: ")
    assert not (tmp_path / "new").exists()


def test_a_journal_line_nested_100000_deep(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    deep = b"[" * DEEP + b"]" * DEEP
    journal = damage_journal(run, 2, b'"case":"c1"', b'"case":' + deep)
    for command in ("score", "report", "gate"):
        line = one_error_line(run_cli(command, str(run)), f"{journal}:2: ")
        assert "not a margin journal record" in line


def test_gate_with_a_baseline_whose_journal_is_not_utf8(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run")
    base = fixture_run(tmp_path / "base")
    journal = damage_journal(base, 2, *WHERE["output"])
    result = run_cli("gate", str(run), "--baseline", str(base))
    assert "not UTF-8" in one_error_line(result, f"{journal}:2: ")


def test_a_partial_last_line_cut_inside_a_character_is_not_damage(tmp_path: Path) -> None:
    """A run killed mid-write may cut a multi-byte character: that line is not an attempt yet."""
    run = fixture_run(tmp_path / "run", results=False)
    journal = run / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"key":"m|s/t/c9|p0|r0","output":"caf\xc3')
    result = run_cli("score", str(run))
    assert result.exit_code == 0, result.output


def test_report_on_a_failing_record_the_scorer_skips_over(tmp_path: Path) -> None:
    """The statistics read some columns only; the drill-down reads whole failing records."""
    run = fixture_run(tmp_path / "run", results=False)
    journal = damage_journal(run, 3, b'"output":"answer"', b'"output":"answer","colour":"red"')
    line = one_error_line(run_cli("report", str(run)), f"{journal}:3: ")
    assert "not a margin journal record" in line


def test_a_journal_that_is_a_directory(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    journal = run / "journal.jsonl"
    journal.unlink()
    journal.mkdir()
    for command in ("score", "report"):
        one_error_line(run_cli(command, str(run)), f"{journal}: ")


def test_run_resumes_on_a_journal_that_is_not_utf8(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "suite: s\ntarget: 0.5\ntasks:\n  - id: t\n    prompt: 'Say {{ x }}'\n"
        "    cases:\n      - {id: a, vars: {x: '1'}}\n      - {id: b, vars: {x: '2'}}\n"
        "    validators:\n      - contains_all: ['1']\n",
        encoding="utf-8",
    )
    models = tmp_path / "m.yaml"
    models.write_text(
        "models: [{name: m, model: fake/echo}]\nrun: {noise: false, repeats: 1}\n",
        encoding="utf-8",
    )
    args = ["run", str(suite), "--models", str(models), "--out", str(tmp_path / "run")]
    first = run_cli(*args, "--no-cache")
    assert first.exit_code == 0, first.output
    journal = damage_journal(tmp_path / "run", 2, b'"role":"user"', b'"role":"us\xc0r"')
    before = files_in(tmp_path / "run")
    line = one_error_line(run_cli(*args, "--no-cache"), f"{journal}:2: ")
    assert "not UTF-8" in line
    assert files_in(tmp_path / "run") == before


# -- run.json ----------------------------------------------------------------------------------


def test_score_on_a_run_file_nested_100000_deep(tmp_path: Path) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    (run / "run.json").write_text("[" * DEEP + "]" * DEEP, encoding="utf-8")
    one_error_line(run_cli("score", str(run)), f"{run / 'run.json'}")


# -- judges.json -------------------------------------------------------------------------------

JUDGES_DAMAGE = [
    ("deep", b"[" * DEEP + b"]" * DEEP, "1: not JSON: nested too deep"),
    ("not-a-list", b'{"suite": "s"}', " not a margin judges file: "),
    ("entry-missing-fields", b'[{"suite": "s"}]', " [0].task: not a margin judges file: "),
]


@pytest.mark.parametrize(
    ("name", "content", "message"), JUDGES_DAMAGE, ids=[c[0] for c in JUDGES_DAMAGE]
)
@pytest.mark.parametrize("command", ["report", "gate"])
def test_a_damaged_judges_file(
    tmp_path: Path, command: str, name: str, content: bytes, message: str
) -> None:
    run = fixture_run(tmp_path / "run", results=False)
    (run / "judges.json").write_bytes(content)
    line = one_error_line(run_cli(command, str(run)), f"{run / 'judges.json'}:")
    assert message in line


# -- run.json of the wrong shape ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "field"),
    [("notalist", ""), ([{"name": 3, "model": "fake/m"}], "name: "), ([{"nom": "m"}], "")],
    ids=["not-a-list", "name-not-text", "unknown-key"],
)
@pytest.mark.parametrize("command", ["score", "report"])
def test_a_run_file_of_the_wrong_shape_is_one_line(
    tmp_path: Path, models: object, field: str, command: str
) -> None:
    folder = fixture_run(tmp_path / "run", results=False)
    path = folder / "run.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["models"] = models
    path.write_text(json.dumps(data), encoding="utf-8")
    line = one_error_line(run_cli(command, str(folder)), f"{path}: {field}")
    assert "not a margin run file" in line
