"""`margin run` closes with the decision per feature, before the models and the one-model
recommendation."""

from __future__ import annotations

from pathlib import Path

from margin.cli.run import command
from margin.providers.scripts import Script
from tests.conftest import SUITES
from tests.execute.conftest import ROUTING_RULES, loopback, run_once


def test_the_decision_per_feature_leads_the_closing_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LOOP_KEY", "k")
    with loopback(Script(rules=ROUTING_RULES)) as url:
        models = tmp_path / "m.yaml"
        models.write_text(
            "models:\n  - {name: loop, model: openai/fake, api_base: '" + url + "',"
            " api_key: '${LOOP_KEY}', price: {input_per_mtok: 1, output_per_mtok: 2}}\n"
            "run: {noise: false, target: 0.65}\n"
        )
        result = run_once(tmp_path, SUITES / "routing.yaml", models)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = lines.index("Decision per feature:")
    assert lines[first + 1].startswith(
        "  routing/queue → loop: 20/20 100.0% [69.1, 100.0] crosses 0.65"
    )  # 2 wordings
    models_at = next(i for i, line in enumerate(lines) if "over all tasks" in line)
    said = next(i for i, line in enumerate(lines) if line.startswith("Recommended:"))
    assert first < models_at < said
    assert command.name == "run"
