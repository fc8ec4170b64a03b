"""`margin run` scores and reports in a process forked before its calls; its own process never
loads the scoring stack, and a finished run is scored whatever becomes of that process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from multiprocessing.context import ForkProcess
from pathlib import Path

import pytest

import margin.cli.scorer as scorer_module
from margin.cli import run_summary
from margin.cli.scorer import Scorer
from margin.errors import UserError
from margin.providers.scripts import Script
from tests.conftest import SUITES
from tests.execute.conftest import ROUTING_RULES, fast_settings, loopback
from tests.report.conftest import make_run
from tests.stats.records import record

HEAVY = ("pandas", "pyarrow", "scipy.stats", "statsmodels")

PARENT = """
import atexit, sys
from margin.cli.main import main
heavy = {heavy!r}
atexit.register(lambda: print("loaded:", sorted(m for m in heavy if m in sys.modules)))
sys.argv = ["margin", *sys.argv[1:]]
main()
"""


def test_the_run_process_never_loads_the_scoring_stack(tmp_path: Path) -> None:
    """A fresh `margin run` process: the report and the closing lines are there, scored by the
    forked scorer, and the run's own process loaded none of pandas, pyarrow or scipy.stats."""
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = tmp_path / "m.yaml"
        models.write_text(
            f"models:\n  - {{name: loop, model: openai/fake, api_base: '{url}', api_key: '${{LOOP_KEY}}'}}\n"
            "run: {noise: false, target: 0.65}\n"
        )
        argv = ["run", str(SUITES / "routing.yaml"), "--models", str(models), "--repeats", "1"]
        argv += ["--config", str(fast_settings(tmp_path)), "--out", str(tmp_path / "run")]
        env = {**os.environ, "MARGIN_CACHE_DIR": str(tmp_path / "cache"), "LOOP_KEY": "k"}
        done = subprocess.run(
            [sys.executable, "-c", PARENT.format(heavy=HEAVY), *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "Decision per feature:" in lines
    assert any(line.startswith("report: ") for line in lines)
    assert (tmp_path / "run" / "index.html").exists()
    assert lines[-1] == "loaded: []"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", [record("a", "c", True), record("b", "c", False)])


def test_the_scorer_scores_the_run_and_says_what_to_print(run: Path) -> None:
    with Scorer([]) as scorer:
        assert scorer.child is not None and scorer.child.is_alive()
        summary = scorer.finish(run)
    assert scorer.child.exitcode == 0
    assert "Decision per feature:" in summary.lines
    assert (
        summary.lines[-2]
        == f"report: {run / 'index.html'} (also summary.md, results.json, junit.xml)"
    )
    assert (run / "results.json").exists() and (run / "index.html").exists()
    assert summary.score_s > 0 and summary.report_s > 0


def test_a_scorer_that_is_gone_leaves_the_run_scored_here(run: Path) -> None:
    """Killed (out of memory, say) before the run ends: the run's process scores it itself."""
    with Scorer([]) as scorer:
        assert scorer.child is not None and scorer.child.pid is not None
        os.kill(scorer.child.pid, signal.SIGKILL)
        scorer.child.join()
        summary = scorer.finish(run)
    assert "Decision per feature:" in summary.lines
    assert (run / "index.html").exists()


def test_without_fork_the_run_is_scored_in_its_own_process(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "fork")
    with Scorer([]) as scorer:
        assert scorer.child is None
        summary = scorer.finish(run)
    assert "Decision per feature:" in summary.lines


def test_a_damaged_journal_is_the_users_error_with_its_line(run: Path) -> None:
    with (run / "journal.jsonl").open("a", encoding="utf-8") as journal:
        journal.write('{"not": "a record"}\n')
    with Scorer([]) as scorer, pytest.raises(UserError) as raised:
        scorer.finish(run)
    assert raised.value.path == str(run / "journal.jsonl")
    assert raised.value.line == 3


def test_a_run_that_ends_in_an_error_stops_its_scorer(run: Path) -> None:
    with pytest.raises(KeyboardInterrupt), Scorer([]) as scorer:
        raise KeyboardInterrupt
    assert scorer.child is not None and not scorer.child.is_alive()  # stopped, not waited for
    assert not (run / "results.json").exists()


def test_a_scorer_never_ready_is_stopped_and_the_run_scored_here(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scorer stuck before it is ready (here: its preparation never returns) cannot hold the
    run: READY_S after the calls end it is stopped and the run's process scores."""
    monkeypatch.setattr(run_summary, "prepare", lambda: time.sleep(3600))
    monkeypatch.setattr(scorer_module, "READY_S", 0.2)
    with Scorer([]) as scorer:
        summary = scorer.finish(run)
        assert scorer.child is not None and not scorer.child.is_alive()
    assert "Decision per feature:" in summary.lines
    assert (run / "index.html").exists()


def test_a_fork_that_fails_leaves_the_run_scored_here(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: object) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ForkProcess, "start", refuse)
    with Scorer([]) as scorer:
        assert scorer.child is None and scorer.conn is None
        summary = scorer.finish(run)
    assert "Decision per feature:" in summary.lines
