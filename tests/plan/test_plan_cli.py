"""`margin plan`, the plan's keys and seeds, configs, and CLI start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from margin.config import load_models, load_run_settings
from margin.errors import ConfigError
from margin.plan import AttemptKey, Variant, build_plan, derive_seed, plan_table
from margin.suite.load import load_suites
from tests.conftest import CONFIGS, SUITES, run_cli


def test_plan_prints_the_table_for_the_local_family() -> None:
    result = run_cli("plan", str(SUITES), "--models", str(CONFIGS / "local.yaml"))
    assert result.exit_code == 0, result.stderr
    for name in ("smollm2-135m", "qwen-0.5b", "qwen-1.5b", "support-desk/ticket-title", "total"):
        assert name in result.stdout


def test_plan_counts_models_tasks_cases_variants_repeats() -> None:
    suites = load_suites([SUITES / "arithmetic.yaml"])
    models = load_models(CONFIGS / "local.yaml")
    settings = load_run_settings([], repeats=4, noise=False)
    plan = build_plan(suites, models, settings)
    # 3 models × 10 cases × (prompt + 2 paraphrases) × 4 repeats
    assert len(plan) == 3 * 10 * 3 * 4
    keys = [a.key for a in plan.attempts]
    assert len(set(keys)) == len(keys)
    assert len({a.seed for a in plan.attempts}) == len(keys)
    again = build_plan(suites, models, settings)
    assert [(a.key, a.seed, a.messages) for a in again.attempts] == [
        (a.key, a.seed, a.messages) for a in plan.attempts
    ]


def test_no_paraphrases_setting_keeps_only_the_clean_prompt() -> None:
    suites = load_suites([SUITES / "arithmetic.yaml"])
    models = load_models(CONFIGS / "local.yaml")[:1]
    plan = build_plan(
        suites, models, load_run_settings([], repeats=1, paraphrases=False, noise=False)
    )
    assert {a.key.variant for a in plan.attempts} == {"p0"}


def test_variant_ids_are_stable_and_leave_room_for_noise() -> None:
    assert Variant(0).id == "p0"
    assert Variant(2).id == "p2"
    assert Variant(0, "typos", 0.05).id == "p0~typos@0.05v1"
    key = AttemptKey("m", "s", "t", "c", "p0", 0)
    assert derive_seed(0, key) == derive_seed(0, key) != derive_seed(1, key)


def test_plan_json_has_costs_from_the_price_map() -> None:
    result = run_cli(
        "plan",
        str(SUITES / "routing.yaml"),
        "--models",
        str(CONFIGS / "openai.yaml"),
        "--repeats",
        "1",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    by_model = {r["model"]: r for r in rows}
    assert by_model["gpt-4o"]["cost_usd"] > by_model["gpt-4o-mini"]["cost_usd"] > 0
    assert by_model["gpt-4o"]["attempts"] == 90  # 10 cases × (prompt, paraphrase, 7 noise levels)


def test_plan_table_marks_unknown_prices(write) -> None:
    models = write("m.yaml", "models: [{name: x, model: someprovider/unknown-model}]\n")
    table = plan_table(
        build_plan(
            load_suites([SUITES / "routing.yaml"]), load_models(models), load_run_settings([])
        )
    )
    assert table["cost_usd"].isna().all()


def test_run_settings_merge_files_then_flags(write) -> None:
    first = write("a.yaml", "run: {repeats: 5, seed: 7}\n")
    second = write("b.yaml", "run: {repeats: 9}\n")
    settings = load_run_settings([first, second], repeats=None, concurrency=3)
    assert (settings.repeats, settings.seed, settings.concurrency) == (9, 7, 3)


def test_api_keys_are_read_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_models(CONFIGS / "openai.yaml")[0]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        model.resolve_api_key()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert model.resolve_api_key() == "sk-test"
    assert "sk-test" not in model.model_dump_json()


def test_every_example_config_loads() -> None:
    from margin.config import load_config

    for path in CONFIGS.glob("*.yaml"):
        has_models = bool(load_config(path).models)
        models = path if has_models else CONFIGS / "local.yaml"
        result = run_cli(
            "plan",
            str(SUITES / "arithmetic.yaml"),
            "--models",
            str(models),
            "--config",
            str(CONFIGS / "run.yaml" if has_models else path),
        )
        assert result.exit_code == 0, (path, result.stderr)


def test_help_imports_nothing_heavy_and_every_option_has_an_env_variable() -> None:
    """What makes `--help` slow is what it imports (litellm alone takes seconds): that is
    checked here, on any machine; its time is a benchmark's to measure, not a test's."""
    proc = subprocess.run(
        [sys.executable, "-m", "margin.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "validate" in proc.stdout
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "margin.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for heavy in ("litellm", "pandas", "pydantic"):
        assert f" {heavy}\n" not in probe.stderr and f"| {heavy}\n" not in probe.stderr
    from margin.cli.main import cli

    for name, command in cli.commands.items():
        for param in command.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert param.envvar, (name, param.name)


def test_only_picks_models_from_the_set() -> None:
    result = run_cli(
        "plan",
        str(SUITES / "routing.yaml"),
        "--models",
        str(CONFIGS / "local.yaml"),
        "--only",
        "qwen-0.5b",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert {row["model"] for row in json.loads(result.stdout)} == {"qwen-0.5b"}
    wrong = run_cli(
        "plan",
        str(SUITES / "routing.yaml"),
        "--models",
        str(CONFIGS / "local.yaml"),
        "--only",
        "gpt-9",
    )
    assert wrong.exit_code == 2 and "no model 'gpt-9' in the set" in wrong.stderr


def test_plan_says_whether_the_evidence_could_decide_anything() -> None:
    from margin.stats.evidence import evidence_table

    suites = load_suites([SUITES / "arithmetic.yaml"])
    models = load_models(CONFIGS / "local.yaml")
    plan = build_plan(suites, models, load_run_settings([], repeats=4, noise=False))
    row = evidence_table(plan).iloc[0]
    assert (row["cases"], row["conditions"], row["repeats"]) == (10, 3, 4)
    assert row["pooled"] == 120 and row["per_condition"] == 40
    # 10 cases that all pass show at most 0.025^(1/10) = 0.69: a 0.9 target cannot be crossed;
    # 36 can (ln 0.025 / ln 0.9 = 35.01)
    assert row["all_pass_low"] == pytest.approx(0.025 ** (1 / 10))
    assert not row["can_cross"] and row["cases_needed"] == 36
    # three models: Holm's strictest step is 0.05/3, so 6 discordant attempts one way
    assert row["detectable_independent"] == pytest.approx(6 / 120)
    assert row["detectable_copies"] == pytest.approx(6 / 10)
    result = run_cli(
        "plan", str(SUITES / "arithmetic.yaml"), "--models", str(CONFIGS / "local.yaml")
    )
    assert "Evidence needed" in result.stdout and "cases needed" in result.stdout


def test_plan_adaptive_shows_expected_and_worst_case_calls() -> None:
    result = run_cli(
        "plan", str(SUITES / "routing.yaml"), "--models", str(CONFIGS / "local.yaml"),
        "--adaptive", "--max-repeats", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("adaptive (cap 5 repeats)"))
    expected = int(line.split("expected ≈ ")[1].split(" calls")[0].replace(",", ""))
    # configs/local.yaml runs the noise levels: 3 models × 10 cases × 8 variants (clean, typos
    # 0.05/0.1/0.2, case 0.3/1.0, distractors 1/3 of the routing fixture) × 5 repeats
    assert 0 < expected < 1200 and "worst case 1,200 (the fixed plan" in line
