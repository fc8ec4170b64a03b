"""Early stopping over cases (`run.early_stop`) on the in-process fake model: a model that fails
stops after the cases that decide it, one that passes runs on; exact resume; and a seeded
simulation of its wrong verdicts at true rates near the target."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from margin.execute.adaptive import closing_verdicts
from margin.execute.early_stop import case_rounds
from margin.journal.records import read_journal
from margin.providers.fake import register_script
from margin.providers.scripts import Script
from margin.stats.intervals import CROSSES, FALLS_SHORT, UNDECIDED, rate_interval, verdicts
from tests.conftest import run_cli

CASES = 60
SUITE = "suite: echoes\ntarget: 0.9\ntasks:\n  - id: repeat-word\n" + (
    '    prompt: "Say the word {{ word }}"\n    cases:\n'
    + "".join(f"      - {{id: c{i}, vars: {{word: w{i}x}}, expect: {{word: w{i}x}}}}\n" for i in range(CASES))
    + "    validators:\n      - contains_all: {from_expect: word}\n"
)  # fmt: skip


def _write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    register_script("mute", Script(default="no idea"))
    (tmp_path / "echoes.yaml").write_text(SUITE)
    (tmp_path / "models.yaml").write_text(json.dumps({
        "models": [{"name": "echo", "model": "fake/echo"}, {"name": "mute", "model": "fake/mute"}],
        "run": {"noise": False, "paraphrases": False, "repeats": 1, "early_stop": True},
    }))  # fmt: skip
    out = tmp_path / "run"
    return ["run", str(tmp_path / "echoes.yaml"), "--models", str(tmp_path / "models.yaml"),
            "--out", str(out)]  # fmt: skip


def test_case_rounds_grow_by_half_to_the_cases() -> None:
    assert case_rounds(60) == [4, 6, 9, 14, 21, 32, 48, 60]
    assert case_rounds(3) == [3]


def test_a_failing_model_stops_after_its_first_round_and_a_passing_one_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _write(tmp_path, monkeypatch)
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    # mute fails its first 4 cases: 0/4 is "falls short" of 0.9 by the sequence and by Wilson.
    # echo passes all: 48 straight passes do not decide the sequence at 0.9, so it runs all 60.
    assert Counter(r.model for r in records) == {"mute": 4, "echo": CASES}
    # the same 4 cases, the first of the seeded order every model shares
    mute = {r.case for r in records if r.model == "mute"}
    assert len(mute) == 4
    timing = json.loads((tmp_path / "run" / "timing.json").read_text())
    assert timing["cases_stopped"] == CASES - 4
    assert "56 attempts left unrun by early_stop" in result.stdout


def test_a_killed_early_stop_run_resumes_to_exactly_the_same_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _write(tmp_path, monkeypatch)
    assert run_cli(*args).exit_code == 0
    journal = tmp_path / "run" / "journal.jsonl"
    whole = journal.read_text().splitlines(keepends=True)
    for kept in (3, 6, 20, 50):  # killed inside the first round, and in later ones
        journal.write_text("".join(whole[:kept]))
        again = run_cli(*args)
        assert again.exit_code == 0, again.output
        keys = sorted(r.key for r in read_journal(journal))
        assert keys == sorted(json.loads(line)["key"] for line in whole)


def _simulate(rate: float, cells: int, cases: int, target: float, seed: int) -> Counter[str]:
    """Verdicts of `cells` cells at true pass rate `rate` under early stopping over `cases`
    cases (one attempt each): closed by `closing_verdicts` after a round, else judged at the end
    by the report's interval, as a fixed run is."""
    rng = np.random.default_rng(seed)
    passes = np.cumsum(rng.random((cells, cases)) < rate, axis=1)
    verdict = np.full(cells, UNDECIDED, dtype=object)
    open_ = np.ones(cells, dtype=bool)
    for size in case_rounds(cases)[:-1]:
        closing = closing_verdicts(passes[:, size - 1], np.full(cells, size), target, 0.05)
        now = open_ & (closing != UNDECIDED)
        verdict[now], open_ = closing[now], open_ & ~now
    final = verdicts(*rate_interval(passes[:, -1], np.full(cells, cases)), target)
    verdict[open_] = final[open_]
    return Counter(verdict.tolist())


@pytest.mark.parametrize("rate", [0.86, 0.88, 0.90])
def test_wrong_crosses_stay_within_the_level_at_rates_at_or_below_the_target(rate: float) -> None:
    counts = _simulate(rate, cells=4000, cases=200, target=0.9, seed=1)
    assert counts[CROSSES] / 4000 <= 0.025


@pytest.mark.parametrize("rate", [0.90, 0.92, 0.94])
def test_wrong_falls_short_stay_within_the_level_at_rates_at_or_above_the_target(
    rate: float,
) -> None:
    counts = _simulate(rate, cells=4000, cases=200, target=0.9, seed=2)
    assert counts[FALLS_SHORT] / 4000 <= 0.025
