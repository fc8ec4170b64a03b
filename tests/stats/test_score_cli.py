"""`margin score` and the end of `margin run` on a real run through litellm's HTTP path."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from margin.providers.scripts import Script
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, loopback

ROUTING = str(SUITES / "routing.yaml")


def model(name: str, url: str, price: float) -> dict[str, object]:
    return {
        "name": name,
        "model": "openai/fake",
        "api_base": url,
        "api_key": "${LOOP_KEY}",
        "timeout": 5,
        "price": {"input_per_mtok": price, "output_per_mtok": price},
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished run: `good` routes every message right, `lazy` answers `billing` to all."""
    folder = tmp_path_factory.mktemp("score")
    with (
        pytest.MonkeyPatch.context() as env,
        loopback(Script(rules=ROUTING_RULES)) as good,
        loopback(Script(default="billing")) as lazy,
    ):
        env.setenv("LOOP_KEY", "k")
        env.setenv("MARGIN_CACHE_DIR", str(folder / "cache"))
        config = folder / "models.yaml"
        config.write_text(
            json.dumps(
                {
                    "models": [model("good", good, 2.0), model("lazy", lazy, 0.5)],
                    # A demo target: 10 cases that all pass can show 0.69 at most
                    # (Clopper–Pearson 0.025^(1/10) = 0.6915).
                    "run": {"noise": False, "target": 0.65, "repeats": 1},
                }
            )
        )
        result = run_cli("run", ROUTING, "--models", str(config), "--out", str(folder / "run"))
    assert result.exit_code == 0, result.output
    return folder / "run", result.stdout


def test_run_ends_with_the_recommendation(run_dir: tuple[Path, str]) -> None:
    _, stdout = run_dir
    assert "good: 20/20 100.0% [69.1, 100.0] over all tasks (rank 1); crosses every task" in stdout
    assert "lazy: 4/20 20.0% [" in stdout and "falls short on 1 of 1 task;" in stdout
    assert "(rank 2); falls short on 1 of 1 task" in stdout
    assert (
        "routing/queue (target 0.65): good crosses 20/20 100.0% [69.1, 100.0]; lazy falls short"
        in stdout
    )
    assert "Recommended: good — crosses every task" in stdout
    assert "lazy: falls short on routing/queue: 4/20 20.0%" in stdout
    # the worst condition and the constraint that breaks first each with n and interval
    # 2/10 effective: Clopper–Pearson [0.0252, 0.5561], shown rounded outward
    assert "breaks first: choice (4/20 20.0% [2.5, 55.7])" in stdout
    # its two paraphrases tie at 2/10; either may be named
    assert re.search(r"worst condition p\d \(2/10 20\.0% \[2\.5, 55\.7\]\)", stdout)
    assert f"details: margin score {run_dir[0]}" in stdout


def test_score_json_carries_every_table(run_dir: tuple[Path, str]) -> None:
    result = run_cli("score", str(run_dir[0]), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recommendation"]["model"] == "good"
    assert data["recommendation"]["runner_up"] is None
    tasks = {row["model"]: row for row in data["tasks"]}
    assert tasks["good"]["verdict"] == "crosses" and tasks["good"]["n"] == 20
    assert tasks["good"]["deff"] == pytest.approx(2.0)  # two wordings per case, both pass
    assert tasks["lazy"]["verdict"] == "falls short" and tasks["lazy"]["rank"] == 2
    conditions = {(r["model"], r["condition"]) for r in data["conditions"]}
    assert conditions == {(m, c) for m in ("good", "lazy") for c in ("p0", "p1")}
    assert {r["scope"] for r in data["comparisons"]} == {"routing/queue", "all"}
    pair = next(r for r in data["comparisons"] if r["scope"] == "all")
    assert pair["significant"] and pair["pairs"] == 20
    assert {row["validator"] for row in data["validators"]} == {"choice"}
    assert data["models"][0]["cost_per_1000"] > 0


def test_score_csv_and_views(run_dir: tuple[Path, str]) -> None:
    result = run_cli("score", str(run_dir[0]), "--format", "csv", "--by", "condition")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 4 and {"condition", "low", "high", "verdict", "n"} <= set(rows[0])
    table = run_cli("score", str(run_dir[0]), "--by", "validator")
    assert table.exit_code == 0 and "By validator" in table.stdout and "choice" in table.stdout
    assert "Recommended: good" in table.stdout


def test_score_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("score", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path}: not a margin run directory (no run.json)"


def test_score_table_shows_the_tasks_verdicts_not_a_pooled_one(run_dir: tuple[Path, str]) -> None:
    """The models table pools the tasks' attempts; its verdict column is each task's verdict
    against its own target, said as such, never a verdict of the pooled interval beside it."""
    result = run_cli("score", str(run_dir[0]))
    assert result.exit_code == 0, result.output
    assert "tasks vs target" in result.stdout
    assert "crosses every task" in result.stdout and "falls short on 1 of 1" in result.stdout
    assert "the pooled interval decides none of them" in " ".join(result.stdout.split())
