"""`margin gate` on fixture runs with known differences: every exit code, and its statistics."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from margin.decide.regression import detectable_drop, paired_regression
from margin.report import render_report
from tests.conftest import run_cli
from tests.report.conftest import SUITE, make_run
from tests.stats.records import record

CASES, REPEATS = 300, 2


def outcomes(fails: set[int], flaky: set[int] = frozenset()) -> list:  # type: ignore[type-arg,assignment]
    """Model m on s/t: CASES cases × REPEATS; `fails` fail every repeat, `flaky` fail repeat 0."""
    return [
        record("m", f"c{i}", not (i in fails or (i in flaky and r == 0)), repeat=r, latency=0.5)
        for i in range(CASES)
        for r in range(REPEATS)
    ]


def run_dir(tmp_path: Path, name: str, records: list, suite: str = SUITE) -> Path:  # type: ignore[type-arg]
    folder = make_run(tmp_path / name, records, settings={"target": 0.8})
    (folder / "suites" / "s.yaml").write_text(suite, encoding="utf-8")
    render_report(folder)
    return folder


BASE_FAILS = set(range(0, 300, 25))  # 12 cases fail: 96%


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return run_dir(tmp_path, "base", outcomes(BASE_FAILS))


def gate(*args: str):  # type: ignore[no-untyped-def]
    return run_cli("gate", *args)


def test_no_change_passes_and_says_what_it_could_detect(tmp_path: Path, baseline: Path) -> None:
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS))
    result = gate(str(now), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    assert "m on s/t: paired comparison of 600 attempts can detect a drop of" in result.stdout
    assert "gate passed: 1 model × task checked; exit 0" in result.stdout
    summary = (now / "gate" / "summary.md").read_text()
    assert summary.startswith("## margin gate: passed")
    assert ET.parse(now / "gate" / "junit.xml").getroot().find("testsuite").get("failures") == "0"


def test_a_real_regression_fails(tmp_path: Path, baseline: Path) -> None:
    worse = BASE_FAILS | set(range(1, 300, 10))  # 30 more cases fail every repeat: −10 points
    now = run_dir(tmp_path, "now", outcomes(worse))
    result = gate(str(now), "--baseline", str(baseline))
    assert result.exit_code == 1, result.output
    assert "regression: significant and ≥ min_drop" in result.stdout
    assert "96.0%" in result.stdout and "86.0%" in result.stdout
    junit = ET.parse(now / "gate" / "junit.xml").getroot().find("testsuite")
    assert junit.get("failures") == "1"


def test_a_noise_sized_difference_passes(tmp_path: Path, baseline: Path) -> None:
    # a few flaky single-repeat failures come and go: no case fails every repeat anew
    base = run_dir(tmp_path, "base2", outcomes(BASE_FAILS, flaky={3, 7, 11, 40}))
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS, flaky={5, 9, 13, 60, 61, 62}))
    result = gate(str(now), "--baseline", str(base))
    assert result.exit_code == 0, result.output
    assert "regression" not in result.stdout and "hard break" not in result.stdout


def test_a_single_hard_break_fails_whatever_the_totals(tmp_path: Path, baseline: Path) -> None:
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS | {1}))
    result = gate(str(now), "--baseline", str(baseline))
    assert result.exit_code == 1, result.output
    assert "hard break" in result.stdout and "case c1: 2/2" in result.stdout
    assert "regression: significant" not in result.stdout  # 2 of 600 attempts is not material


def test_an_undecided_run_exits_3_unless_allowed(tmp_path: Path) -> None:
    small = [record("m", f"c{i}", True) for i in range(10)]
    now = make_run(tmp_path / "small", small)  # target 0.9: 10/10 is [69.1, 100]
    result = gate(str(now))
    assert result.exit_code == 3, result.output
    # the count is the results row's `more_cases`, not one the gate computes for itself
    [row] = json.loads((now / "results.json").read_text())["tasks"]
    said = (now / "gate" / "summary.md").read_text()
    assert f"undecided: about {int(row['more_cases'])} more new cases, one attempt each" in said
    assert "(4 in 5 chance to settle)" in said and "attempts would decide" not in said
    allow = tmp_path / "gate.yaml"
    allow.write_text("on_undecided: pass\n")
    relaxed = gate(str(now), "--config", str(allow))
    assert relaxed.exit_code == 0 and "undecided evidence allowed" in relaxed.stdout


def test_targets_latency_and_cost_limits(tmp_path: Path, baseline: Path) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text("targets: {s/t: 0.99}\nmax_p95_s: 0.1\nmax_cost_per_1k: 0.5\n")
    result = gate(str(baseline), "--config", str(config))
    assert result.exit_code == 1, result.output
    for rule in ("falls short of its target", "latency limit", "cost limit"):
        assert rule in result.stdout


def test_a_changed_suite_is_refused_and_named(tmp_path: Path, baseline: Path) -> None:
    changed = SUITE.replace('must_not_contain: ["<script>"]', 'must_not_contain: ["<b>"]')
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS), suite=changed)
    result = gate(str(now), "--baseline", str(baseline))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: the baseline measured something else: s/t: validators changed"
        " (--allow-changed-suite compares anyway)"
    )
    allowed = gate(str(now), "--baseline", str(baseline), "--allow-changed-suite")
    assert allowed.exit_code == 0 and "compared anyway" in allowed.stdout


def test_a_changed_prompt_is_what_is_gated(tmp_path: Path, baseline: Path) -> None:
    reworded = SUITE.replace('prompt: "Say', 'prompt: "Please say')
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS), suite=reworded)
    result = gate(str(now), "--baseline", str(baseline))
    assert result.exit_code == 0 and "the prompt changed since the baseline" in result.stdout


def test_a_baseline_of_another_results_version_is_refused(tmp_path: Path, baseline: Path) -> None:
    data = json.loads((baseline / "results.json").read_text())
    data["results_version"] = 1
    other = tmp_path / "other" / "results.json"
    other.parent.mkdir()
    other.write_text(json.dumps(data))
    result = gate(str(baseline), "--baseline", str(other))
    assert result.exit_code == 2
    assert "results version 1; this margin reads version 2" in result.stderr


def test_without_matching_keys_it_compares_two_samples_and_warns(
    tmp_path: Path, baseline: Path
) -> None:
    only_results = tmp_path / "shared"
    only_results.mkdir()
    shutil.copy(baseline / "results.json", only_results / "results.json")
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS | set(range(1, 300, 10))))
    result = gate(str(now), "--baseline", str(only_results / "results.json"))
    assert "warning: m on s/t: no matching attempt keys in the baseline" in result.stdout
    assert result.exit_code == 1 and "regression" in result.stdout


def test_a_broken_gate_file_is_one_line(tmp_path: Path, baseline: Path) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text("min_drop: 0.03\nmax_p99: 3\n")
    result = gate(str(baseline), "--config", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {config}:2: max_p99:")
    unknown = tmp_path / "g2.yaml"
    unknown.write_text("models: [nobody]\n")
    assert "gate names model 'nobody'" in gate(str(baseline), "--config", str(unknown)).stderr
    schema = json.loads(run_cli("schema", "--kind", "gate").stdout)
    assert "on_undecided" in schema["properties"]


def simulate(cases: int, drop: float, trials: int, seed: int) -> tuple[float, float]:
    """Share of `trials` baseline/candidate pairs the regression rule fails, and the median
    drop the gate says it can detect."""
    rng = np.random.default_rng(seed)
    failed, detectable = 0, []
    for _ in range(trials):
        rates = rng.beta(8, 2, size=cases)
        base = (rng.random(cases) < rates).astype(float)
        now = (rng.random(cases) < np.clip(rates - drop, 0, 1)).astype(float)
        result = paired_regression(base, now, np.arange(cases), alpha=0.05, min_drop=0.03)
        failed += result.regression
        detectable.append(result.detectable)
    return failed / trials, float(np.median(detectable))


def test_simulated_gate_holds_alpha_and_has_the_power_it_claims() -> None:
    false_alarms, _ = simulate(800, 0.0, trials=1000, seed=1)
    assert false_alarms <= 0.05 + 0.01
    _, claimed = simulate(800, 0.0, trials=200, seed=2)
    assert claimed <= 2 * 0.03  # at 800 attempts it says it can detect a 6-point drop …
    caught, _ = simulate(800, 2 * 0.03, trials=1000, seed=3)
    assert caught >= 0.80  # … and it does, 80% of the time or more


def test_detectable_drop_shrinks_with_evidence() -> None:
    sizes = [detectable_drop(n, 0.25, 0.05, 0.03) for n in (100, 400, 1600)]
    assert sizes[0] > sizes[1] > sizes[2] >= 0.03
    assert np.isnan(detectable_drop(0, 0.25, 0.05, 0.03))


def test_a_task_with_no_judged_attempt_is_not_compared(tmp_path: Path, baseline: Path) -> None:
    """Every attempt an infra error in the baseline: nothing to compare (it divided by zero)."""
    errors = [record("m", f"c{i}", None, latency=0.5) for i in range(CASES)]
    empty = run_dir(tmp_path, "empty", errors)
    now = run_dir(tmp_path, "now", outcomes(BASE_FAILS))
    result = gate(str(now), "--baseline", str(empty))
    assert "m on s/t: no judged attempt in the baseline, not compared" in result.stdout
    assert "Traceback" not in result.output
    assert result.exit_code == 0, result.output
    back = gate(str(empty), "--baseline", str(now))
    assert "m on s/t: no judged attempt in this run, not compared" in back.stdout
    assert "Traceback" not in back.output
