"""Answers a run must not take at their word (issue 23): a server that echoes the api key it
was sent (item 11), and one that answers past the `max_tokens` it was asked for (item 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.execute.scrub import scrub_answer
from margin.journal.records import read_journal
from margin.providers.scripts import Script
from tests.conftest import run_cli
from tests.execute.conftest import loopback

MODEL_KEY = "sk-Zq9xW3hT7vKp2LmN8rYc4FdA"
JUDGE_KEY = "jk-Hm4tR8sQ1vBn6YpW2xCe9LuG"

ECHO_SUITE = """\
suite: echo
target: 0.5
tasks:
  - id: whole
    prompt: "Tell me about {{ x }}."
    cases:
      - {id: a, vars: {x: apples}}
      - {id: b, vars: {x: bananas}}
    validators:
      - starts_with: PASS
      - judge:
          rubric: "Answer: {{ output }}\\nIs it polite?"
  - id: cut
    prompt: "Tell me about {{ x }}."
    max_tokens: 7
    cases:
      - {id: a, vars: {x: apples}}
    validators:
      - starts_with: PASS
"""


def pieces(key: str) -> list[str]:
    return [key, key[:8], key[-4:]]


def echo_config(tmp_path: Path, model_url: str, judge_url: str) -> Path:
    def spec(name: str, url: str, variable: str) -> dict[str, object]:
        return {
            "name": name, "model": f"openai/fake-{name}", "api_base": url,
            "api_key": "${" + variable + "}", "timeout": 10,
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
        }  # fmt: skip

    config = tmp_path / "models.yaml"
    models = [spec("m", model_url, "LOOP_KEY"), spec("judge", judge_url, "JUDGE_KEY")]
    settings = {"noise": False, "judge": {"model": "judge"}}
    config.write_text(json.dumps({"models": models, "run": settings}))
    return config


def test_a_key_echoed_in_answers_is_stored_and_shown_nowhere(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_KEY", MODEL_KEY)
    monkeypatch.setenv("JUDGE_KEY", JUDGE_KEY)
    suite = tmp_path / "echo.yaml"
    suite.write_text(ECHO_SUITE)
    model = Script(default=f"PASS your key is {MODEL_KEY}, the judge's {JUDGE_KEY}",
                   require_key=MODEL_KEY)  # fmt: skip
    verdict = {"verdict": "pass", "score": 1, "reason": f"mine is {JUDGE_KEY}, yours {MODEL_KEY}"}
    judge = Script(default=json.dumps(verdict), require_key=JUDGE_KEY)
    with loopback(model) as model_url, loopback(judge) as judge_url:
        config = echo_config(tmp_path, model_url, judge_url)
        for out in ("run", "again"):  # the second run replays every answer from the cache
            result = run_cli("run", str(suite), "--models", str(config), "--only", "m",
                             "--repeats", "1", "--out", str(tmp_path / out))  # fmt: skip
            assert result.exit_code == 0, result.output
            assert not any(piece in result.output for piece in pieces(MODEL_KEY))
    records = {(r.task, r.case): r for r in read_journal(tmp_path / "run" / "journal.jsonl")}
    whole = records[("whole", "a")]
    assert whole.output == "PASS your key is ***, the judge's ***"
    assert whole.passed is True  # the answer was judged, and still passes
    trace = whole.verdicts[1].judge
    assert trace is not None and trace.answers[0] is not None
    assert "Answer: PASS your key is ***" in trace.prompt and "mine is ***" in trace.answers[0]
    cut = records[("cut", "a")]
    assert cut.truncated and cut.output == "PASS your key is ***"  # a cut-off key, too
    again = list(read_journal(tmp_path / "again" / "journal.jsonl"))
    assert all(r.cache_hit for r in again)
    stored = [p for folder in ("run", "again") for p in (tmp_path / folder).rglob("*")]
    stored += list(cache_dir.rglob("*"))
    assert any(p.name == "index.html" for p in stored) and any(
        p.suffix == ".sqlite3" for p in stored
    )
    for path in stored:
        if path.is_file():
            data = path.read_bytes()
            for piece in [*pieces(MODEL_KEY), *pieces(JUDGE_KEY)]:
                assert piece.encode() not in data, f"{piece!r} in {path}"


def test_answers_are_not_scrubbed_of_words_that_merely_resemble_a_short_key(
    tmp_path: Path, models_config, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_KEY", "none")  # a local server's placeholder, not a secret to hide
    suite = tmp_path / "s.yaml"
    suite.write_text(ECHO_SUITE.split("  - id: cut")[0].replace(
        "      - judge:\n          rubric: \"Answer: {{ output }}\\nIs it polite?\"\n", ""))  # fmt: skip
    with loopback(Script(default="PASS: none of these words is a key")) as url:
        result = run_cli("run", str(suite), "--models", str(models_config(url)),
                         "--repeats", "1", "--out", str(tmp_path / "run"))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert {r.output for r in records} == {"PASS: none of these words is a key"}


def test_scrub_answer_blanks_a_key_and_its_long_runs_only() -> None:
    key = MODEL_KEY
    assert scrub_answer(f"a {key} b {key}", [key]) == "a *** b ***"
    assert scrub_answer(f"x{key[3:20]}y {key[-9:]}", [key]) == "x***y ***"
    kept = f"{key[:7]} is short; **bold** and *** are the model's own"
    assert scrub_answer(kept, [key, "none"]) == kept


CAPPED_SUITE = """\
suite: capped
target: 0.5
tasks:
  - id: t
    prompt: "Tell me about {{ x }}."
    max_tokens: 16
    cases:
      - {id: a, vars: {x: apples}}
      - {id: b, vars: {x: bananas}}
    validators:
      - max_words: 200
"""


def test_an_answer_past_max_tokens_is_flagged_and_counted(tmp_path: Path, cache_dir: Path) -> None:
    suite = tmp_path / "capped.yaml"
    suite.write_text(CAPPED_SUITE)
    ignores = Script(default="a short answer", completion_tokens=500)  # the usage says 500
    honours = Script(default="a long answer " * 20)  # cut at max_tokens, as models do
    with loopback(ignores) as ignores_url, loopback(honours) as honours_url:
        models = [
            {"name": name, "model": "openai/fake", "api_base": url, "api_key": "${LOOP_KEY}",
             "timeout": 10, "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}
            for name, url in (("ignores", ignores_url), ("honours", honours_url))
        ]  # fmt: skip
        config = tmp_path / "models.yaml"
        config.write_text(json.dumps({"models": models, "run": {"noise": False}}))
        out = tmp_path / "run"
        result = run_cli("run", str(suite), "--models", str(config), "--repeats", "1",
                         "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = list(read_journal(out / "journal.jsonl"))
    for record in records:
        if record.model == "ignores":
            assert (record.output_tokens, record.max_tokens) == (500, 16)
            assert record.over_max_tokens and not record.truncated
        else:
            assert record.output_tokens == 16 and record.truncated
            assert not record.over_max_tokens
    results = json.loads((out / "results.json").read_text())
    over = {row["model"]: row["over_max_tokens"] for row in results["tasks"]}
    assert over == {"ignores": 2, "honours": 0}
    assert {row["model"]: row["truncated"] for row in results["tasks"]} == {
        "ignores": 0,
        "honours": 2,
    }
    assert results["run"]["over_max_tokens"] == 2
    page = (out / "index.html").read_text()
    assert "2 answers longer than the max_tokens sent" in page and "max_tokens ignored" in page


def test_a_journal_written_before_the_flag_still_reads(tmp_path: Path) -> None:
    record = {
        "key": "m|s/t/c|p0|r0", "model": "m", "litellm_model": "openai/x", "suite": "s",
        "task": "t", "case": "c", "variant": "p0", "paraphrase": 0, "noise_kind": "clean",
        "noise_level": 0.0, "variant_version": 1, "repeat": 0, "seed": 1, "temperature": 0.0,
        "messages": [], "output": "x", "verdicts": [], "passed": True, "partial": 1.0,
        "latency_s": 0.1, "output_tokens": 500, "max_tokens": 16, "schema_version": 3,
        "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:01Z",
    }  # fmt: skip
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps(record) + "\n")
    (read,) = read_journal(path)
    assert read.over_max_tokens is False  # not said then; the tokens are there to compare
