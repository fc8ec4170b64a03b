"""Configured policies and `--only`: a policy whose model the run leaves out is set aside with a
note before any call (the run is scored as usual); one naming a model the config lacks is one
line, exit 2, before any call."""

from __future__ import annotations

import json

from tests.conftest import SUITES, run_cli

ROUTING = str(SUITES / "routing.yaml")


def config(tmp_path, policies: list[str]):  # type: ignore[no-untyped-def]
    path = tmp_path / "models.yaml"
    models = [{"name": n, "model": "fake/echo"} for n in ("small", "big")]
    path.write_text(json.dumps({"models": models, "run": {"noise": False, "policies": policies}}))
    return path


def test_only_sets_aside_a_policy_whose_model_it_leaves_out(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    models = config(tmp_path, ["cascade(small, big)", "retry(small, 2)"])
    out = tmp_path / "run"
    result = run_cli("run", ROUTING, "--models", str(models), "--only", "small", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "note: policy cascade(small, big) set aside: big is not in this run" in result.stderr
    data = json.loads((out / "results.json").read_text())
    assert [row["policy"] for row in data["policies"]] == ["retry(small, 2)"]


def test_a_policy_naming_a_model_the_config_lacks_is_refused_before_any_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    models = config(tmp_path, ["cascade(small, huge)"])
    out = tmp_path / "run"
    result = run_cli("run", ROUTING, "--models", str(models), "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: policy 'cascade(small, huge)': no model 'huge' in this run"
    )
    assert not (out / "journal.jsonl").exists()
