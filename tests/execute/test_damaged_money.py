"""A number that is not a number of dollars never reaches the budget (issue 23, item 9).

An infinite or NaN price is refused when the config is read. A journal whose recorded cost is
NaN, infinite or negative is damaged: every command that reads it says so in one line naming
the journal and the line, and a resumed run makes no call — a NaN spend once switched the cap
off, a negative one raised it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.execute.budget import Budget
from margin.journal.records import read_journal
from margin.providers.scripts import Script
from tests.conftest import SUITES, one_error_line, run_cli
from tests.execute.conftest import ROUTING_RULES, loopback, server_stats

ROUTING = str(SUITES / "routing.yaml")
SUITE = """\
suite: s
target: 0.9
tasks:
  - {id: t, prompt: p, cases: [{id: c}], validators: [json]}
"""

# (id, config, substring of the message, line)
BROKEN_PRICES = [
    (
        "price-infinite",
        "models:\n  - name: m\n    model: openai/x\n"
        "    price: {input_per_mtok: .inf, output_per_mtok: 1}\n",
        "finite number",
        4,
    ),
    (
        "price-nan",
        "models:\n  - name: m\n    model: openai/x\n    price:\n"
        "      input_per_mtok: 1\n      output_per_mtok: .nan\n",
        "finite number",
        6,
    ),
    (
        "price-minus-infinite",
        "models:\n  - name: m\n    model: openai/x\n"
        "    price: {input_per_mtok: -.inf, output_per_mtok: 1}\n",
        "finite number",
        4,
    ),
    (
        "price-negative",
        "models:\n  - name: m\n    model: openai/x\n"
        "    price: {input_per_mtok: 1, output_per_mtok: -2}\n",
        "greater than or equal to 0",
        4,
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "message", "line"), BROKEN_PRICES, ids=[b[0] for b in BROKEN_PRICES]
)
def test_a_price_that_is_not_a_number_of_dollars_is_refused_at_load(
    write, name: str, content: str, message: str, line: int
) -> None:
    suite = write("ok.yaml", SUITE)
    config = write(f"{name}.yaml", content)
    result = run_cli("plan", str(suite), "--models", str(config))
    assert message in one_error_line(result, f"{config}:{line}: ")


def test_an_infinite_cap_in_a_config_is_refused(write) -> None:
    suite = write("ok.yaml", SUITE)
    models = write("m.yaml", "models: [{name: m, model: fake/m}]\n")
    config = write("run.yaml", "run:\n  max_cost: .inf\n")
    result = run_cli("plan", str(suite), "--models", str(models), "--config", str(config))
    assert "finite number" in one_error_line(result, f"{config}:2: ")


DAMAGE = [
    ("cost_usd", float("nan")),
    ("cost_usd", float("inf")),
    ("cost_usd", -1.0),
    ("judge_cost_usd", float("nan")),
    ("cost_saved_usd", -0.5),
]


def damage(journal: Path, line: int, field: str, value: float) -> None:
    """Set `field` of the journal's record on `line` (1-based) to `value`, written as Python's
    json writes it (`NaN`, `Infinity`)."""
    lines = journal.read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[line - 1])
    record[field] = value
    lines[line - 1] = json.dumps(record) + "\n"
    journal.write_text("".join(lines), encoding="utf-8")


@pytest.mark.parametrize(("field", "value"), DAMAGE, ids=[f"{f}={v}" for f, v in DAMAGE])
def test_a_damaged_cost_in_the_journal_is_one_line_and_no_call(
    tmp_path, models_config, cache_dir, field: str, value: float
) -> None:
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        out = tmp_path / "run"
        first = run_cli("run", ROUTING, "--models", str(models), "--repeats", "1",
                        "--out", str(out), "--no-cache")  # fmt: skip
        assert first.exit_code == 0, first.output
        journal = out / "journal.jsonl"
        spent = sum(r.cost_usd or 0.0 for r in read_journal(journal))
        damage(journal, 3, field, value)
        calls = server_stats(url)["requests"]
        # A cap the earlier spend has already used up: a resumed run may call nothing. A NaN
        # spend compared false against it, and a negative one made room again.
        cap = f"{spent * 0.9:.10f}"
        resumed = run_cli("run", ROUTING, "--models", str(models), "--repeats", "2",
                          "--out", str(out), "--no-cache", "--max-cost", cap)  # fmt: skip
        assert server_stats(url)["requests"] == calls
    results = out / "results.json"
    scored = results.read_bytes()  # by the first run, from the journal before the damage
    results.unlink()
    answers = [resumed, *(run_cli(command, str(out)) for command in ("score", "report", "gate"))]
    assert not results.exists()
    results.write_bytes(scored)  # the gate reads the journals again to compare with a baseline
    answers.append(run_cli("gate", str(out), "--baseline", str(out)))
    for result in answers:
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {journal}:3: "), lines[0]
        assert "a cost is a finite number of dollars" in lines[0], lines[0]


@pytest.mark.parametrize("spent", [float("nan"), float("inf"), -0.1])
def test_the_budget_takes_no_earlier_spend_that_is_not_dollars(spent: float) -> None:
    with pytest.raises(ValueError, match="earlier spend"):
        Budget(cap=1.0, spent=spent)


def test_a_worst_case_that_is_not_a_number_stops_the_budget() -> None:
    budget = Budget(cap=1.0)
    assert not budget.reserve(float("nan"))
    assert budget.stopped and budget.reserved == 0.0


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1e-6, "free", [1]])
def test_a_price_map_entry_that_is_not_dollars_is_no_price(monkeypatch, bad: object) -> None:
    """litellm's bundled map is data margin does not control: an entry that is not a finite
    price of 0 or more leaves the model unpriced (a capped run then asks for a price)."""
    from margin.config import ModelSpec
    from margin.providers import prices

    entry = {"input_cost_per_token": 1e-6, "output_cost_per_token": bad}
    monkeypatch.setattr(prices, "_price_map", lambda: {"odd-model": entry})
    price = prices.price_for(ModelSpec(name="m", model="openai/odd-model"))
    assert not price.known and price.source == "unknown"


@pytest.mark.parametrize("cost", ["1e999", "-0.5"], ids=["infinite", "negative"])
def test_a_cached_cost_that_is_not_dollars_is_called_again_not_replayed(
    tmp_path, models_config, cache_dir, cost: str
) -> None:
    import sqlite3

    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = models_config(url)
        first = run_cli("run", ROUTING, "--models", str(models), "--repeats", "1",
                        "--out", str(tmp_path / "a"))  # fmt: skip
        assert first.exit_code == 0, first.output
        (database,) = cache_dir.rglob("answers.sqlite3")
        with sqlite3.connect(database) as db:
            db.execute(f"UPDATE answers SET cost_usd = {cost}")
        calls = server_stats(url)["requests"]
        again = run_cli("run", ROUTING, "--models", str(models), "--repeats", "1",
                        "--out", str(tmp_path / "b"))  # fmt: skip
        assert again.exit_code == 0, again.output
        assert server_stats(url)["requests"] == 2 * calls  # every answer called again
    records = list(read_journal(tmp_path / "b" / "journal.jsonl"))
    assert len(records) == calls and not any(r.cache_hit for r in records)
    assert all(r.cost_usd is not None and 0 < r.cost_usd < 1 for r in records)
