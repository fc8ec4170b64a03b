"""A self-hosted model priced by the second of serving: each attempt costs its tokens plus its
latency times `per_second`, the plan estimates it, and results.json says the price is nominal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.config import ModelSpec
from margin.journal.records import read_journal
from margin.providers.prices import price_for
from margin.providers.scripts import Script
from tests.conftest import SUITES
from tests.execute.conftest import ROUTING_RULES, loopback, run_once

PER_SECOND = {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "per_second": 0.5, "nominal": True}


def test_a_price_per_second_is_read_from_the_config() -> None:
    spec = ModelSpec.model_validate({"name": "box", "model": "local/x", "price": PER_SECOND})
    price = price_for(spec)
    assert (price.source, price.per_second) == ("nominal", 0.5)
    # 1,000 tokens in, 100 out, 2 s: $0.001 + $0.0002 + $1.00
    assert price.cost(1000, 100, 2.0) == pytest.approx(1.0012)


def test_only_seconds_is_a_whole_price() -> None:
    spec = ModelSpec.model_validate(
        {"name": "box", "model": "local/x", "price": {"per_second": 0.001}}
    )
    assert price_for(spec).cost(5000, 500, 3.0) == pytest.approx(0.003)


def test_each_attempt_costs_its_latency_at_the_price_per_second(
    tmp_path: Path, cache_dir: Path, models_config
) -> None:
    with loopback(Script(rules=ROUTING_RULES, latency_s=0.05)) as url:
        result = run_once(tmp_path, SUITES / "routing.yaml", models_config(url, price=PER_SECOND))
    assert result.exit_code in (0, 1, 3), result.output
    records = [r for r in read_journal(tmp_path / "run" / "journal.jsonl") if r.output]
    assert records, result.output + result.stderr
    for r in records:
        assert r.latency_s is not None and r.latency_s >= 0.05
        tokens = r.input_tokens * 1e-6 + r.output_tokens * 2e-6
        assert r.cost_usd == pytest.approx(tokens + r.latency_s * 0.5, rel=1e-9)
    facts = json.loads((tmp_path / "run" / "results.json").read_text())["run"]["models"][0]
    assert facts["price_per_second"] == 0.5 and facts["price_nominal"] is True
    assert facts["price_per_mtok"] == {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
