"""Scoring a run parses each suite copy once: results.json's fingerprints and guards come from
the suites the scorer loaded (issue 27)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

import margin.decide.scores as scores_module
from margin.decide.scores import score_run
from margin.results import build
from margin.results.score import results_of
from margin.suite import load
from tests.report.conftest import make_run
from tests.stats.records import outcomes


def count_loads(monkeypatch: pytest.MonkeyPatch, *where: ModuleType) -> list[Path]:
    """Every path `load_suite` is called with from the modules `where`, as it is called."""
    loaded: list[Path] = []
    real = load.load_suite

    def counting(path: Path | str, *args: object) -> object:
        loaded.append(Path(path))
        return real(path, *args)  # type: ignore[arg-type]

    for module in where:
        monkeypatch.setattr(module, "load_suite", counting)
    return loaded


def test_each_suite_copy_is_loaded_once_per_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "run", outcomes("m", "1101"))
    loaded = count_loads(monkeypatch, scores_module, build)
    results = results_of(run)
    assert loaded == [run / "suites" / "s.yaml"]
    (suite,) = results.run.suites
    assert suite.fingerprints and suite.guards is not None


def test_a_run_scores_the_suites_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`margin run` hands its loaded suites to the scorer: the copies are not parsed again,
    and the scores are the copies' scores; suites of other names are not taken for them."""
    run = make_run(tmp_path / "run", outcomes("m", "1101"))
    started = load.load_suite(run / "suites" / "s.yaml")
    other = started.model_copy(update={"suite": "other"})
    expected = score_run(run)
    loaded = count_loads(monkeypatch, scores_module)
    scores = score_run(run, suites=[started])
    assert loaded == []
    assert scores.tasks.equals(expected.tasks)
    assert scores.suites == {"s": started}
    score_run(run, suites=[other])
    assert loaded == [run / "suites" / "s.yaml"]
