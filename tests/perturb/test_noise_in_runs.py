"""Noise in the plan, the journal, `margin variants` and the paraphrase lock file."""

from __future__ import annotations

import json
import shutil

import yaml

from margin.config import ModelSpec, load_run_settings
from margin.journal.records import read_journal
from margin.plan import build_plan, variants
from margin.providers.fake import Script, register_script
from margin.suite.load import load_suite, load_suites
from tests.conftest import SUITES, run_cli

DESK = SUITES / "support-desk.yaml"


def test_variants_come_from_the_suite_and_the_run_settings() -> None:
    task = load_suite(DESK).tasks[0]
    ids = [v.id for v in variants(task, load_run_settings([]))]
    assert ids[:3] == ["p0", "p1", "p2"]
    assert "p0~typos@0.05v1" in ids and "p0~long_context@2000v1" in ids
    assert [
        v.id for v in variants(task, load_run_settings([], noise=False, paraphrases=False))
    ] == ["p0"]
    defaults = load_run_settings([], levels={"case": [0.5], "typos": [0.3]}, paraphrases=False)
    ids = [v.id for v in variants(task, defaults)]
    assert "p0~case@0.5v1" in ids  # a run default for a kind the task does not list
    assert "p0~typos@0.3v1" not in ids and "p0~typos@0.2v1" in ids  # the task's levels win


def test_every_model_and_repeat_sees_the_same_noisy_prompt_with_facts_intact() -> None:
    suites = load_suites([DESK])
    models = [ModelSpec(name="a", model="fake/echo"), ModelSpec(name="b", model="fake/echo")]
    plan = build_plan(suites, models, load_run_settings([], repeats=2))
    by_prompt: dict[tuple[str, str], set[str]] = {}
    for attempt in plan.attempts:
        text = attempt.messages[-1].content
        by_prompt.setdefault((attempt.key.case, attempt.key.variant), set()).add(text)
        assert attempt.case.expect["order"] in text  # the order number survives every noise
    assert all(len(texts) == 1 for texts in by_prompt.values())
    clean = {case: texts for (case, variant), texts in by_prompt.items() if variant == "p0"}
    noisy = {
        case: texts for (case, variant), texts in by_prompt.items() if variant == "p0~typos@0.2v1"
    }
    assert all(clean[case] != noisy[case] for case in clean)


def test_the_journal_records_kind_level_paraphrase_and_seed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "echo.yaml"
    config.write_text(json.dumps({"models": [{"name": "echo", "model": "fake/echo"}]}))
    result = run_cli(
        "run", str(DESK), "--models", str(config), "--repeats", "1", "--out", str(tmp_path / "run")
    )
    assert result.exit_code == 0, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len(records) == 10 * (3 + 7)  # 10 cases × (prompt, 2 paraphrases, 7 noise levels)
    typo = next(r for r in records if r.variant == "p0~typos@0.1v1")
    assert (typo.noise_kind, typo.noise_level, typo.paraphrase, typo.variant_version) == (
        "typos",
        0.1,
        0,
        1,
    )
    # echo: what was sent, cut at the task's max_tokens (40 tokens of ~4 characters)
    assert typo.noise_seed and typo.output and typo.messages[-1].content.startswith(typo.output)
    assert typo.truncated == (len(typo.messages[-1].content) > 160)
    clean = next(r for r in records if r.variant == "p1")
    assert (clean.noise_kind, clean.noise_level, clean.paraphrase) == ("clean", 0.0, 1)


def test_margin_variants_prints_every_variant() -> None:
    result = run_cli("variants", str(DESK), "--task", "ticket-title", "--case", "lost-parcel")
    assert result.exit_code == 0, result.output
    for variant in (
        "── p0 ",
        "── p2 ",
        "── p0~typos@0.2v1",
        "── p0~distractors@3v1",
        "── p0~long_context@500v1",
    ):
        assert variant in result.stdout
    assert result.stdout.count("[system]") == 10 and "Background notes" in result.stdout
    missing = run_cli("variants", str(DESK), "--case", "nope")
    assert missing.exit_code == 2 and "has no case 'nope'" in missing.stderr


def test_paraphrase_writes_a_lock_that_is_used_only_once_approved(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    suite_path = tmp_path / "arithmetic.yaml"
    shutil.copyfile(SUITES / "arithmetic.yaml", suite_path)
    register_script(
        "writer",
        Script(
            default=(
                "Here you go:\n"
                "1. Work out {{ a }} + {{ b }} and give only the number.\n"
                "2. What do you get when adding {{ a }} to {{ b }}? Just the number.\n"
                "3. Add the two numbers and reply with the total.\n"  # drops both variables
                "4. Sum {{ a }} and {{ c }}.\n"  # drops {{ b }}
            )
        ),
    )
    config = tmp_path / "writer.yaml"
    config.write_text(json.dumps({"models": [{"name": "writer", "model": "fake/writer"}]}))
    result = run_cli(
        "paraphrase", str(suite_path), "--models", str(config), "--with", "writer", "--count", "4"
    )
    assert result.exit_code == 0, result.output
    assert (
        "kept 2 of 4 paraphrases" in result.stdout and "rejected (drops {{ a }})" in result.stdout
    )
    lock = suite_path.with_name("arithmetic.lock.yaml")
    data = yaml.safe_load(lock.read_text())
    assert data["approved"] is False and data["generated_by"] == "fake/writer"
    assert data["tasks"]["add-3digit"] == [
        "Work out {{ a }} + {{ b }} and give only the number.",
        "What do you get when adding {{ a }} to {{ b }}? Just the number.",
    ]
    assert len(load_suite(suite_path).tasks[0].paraphrases) == 2  # not yet approved
    lock.write_text(lock.read_text().replace("approved: false", "approved: true"))
    task = load_suite(suite_path).tasks[0]
    assert len(task.paraphrases) == 4 and task.paraphrases[2].startswith("Work out")
    shown = run_cli("variants", str(suite_path), "--case", "s1")
    assert "── p4 " in shown.stdout and "What do you get when adding 123 to 456?" in shown.stdout


def test_an_approved_lock_with_a_bad_wording_names_the_lock_file_and_line(tmp_path) -> None:
    suite_path = tmp_path / "arithmetic.yaml"
    shutil.copyfile(SUITES / "arithmetic.yaml", suite_path)
    lock = suite_path.with_name("arithmetic.lock.yaml")
    lock.write_text(
        "suite: arithmetic\ngenerated_by: fake/x\ngenerated_at: 2026-11-23T00:00:00Z\napproved: true\n"
        "tasks:\n  add-3digit:\n    - 'Add {{ a }} and {{ b }}.'\n    - 'Add {{ a }} to nothing.'\n"
    )
    result = run_cli("validate", str(suite_path))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {lock}:8: tasks.add-3digit[1]: paraphrase drops {{{{ b }}}}"
    )
