"""What the runner records about an answer: cut-offs, dropped parameters, hostile text, and
latency that is the model's own (issue 8, 4, 5 and 10)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from margin.config import ModelSpec
from margin.journal.records import read_journal
from margin.providers.fake import register_script
from margin.providers.gateway import dropped_params
from margin.providers.scripts import Script
from margin.validators import CheckContext, build_validator
from margin.validators.bounded import schema_validator
from tests.conftest import run_cli
from tests.execute.conftest import loopback

ONE_TASK = """\
suite: s
target: 0.9
tasks:
  - id: t
    prompt: "Answer about {{ x }}."
    max_tokens: 5
    cases:
      - {id: c1, vars: {x: one}}
      - {id: c2, vars: {x: two}}
    validators:
"""


def suite(tmp_path: Path, *validators: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(ONE_TASK + "".join(f"      - {v}\n" for v in validators))
    return path


def run_suite(tmp_path: Path, suite_path: Path, models: Path, *extra: str) -> list:  # type: ignore[type-arg]
    out = tmp_path / "run"
    result = run_cli("run", str(suite_path), "--models", str(models), "--out", str(out),
                     "--repeats", "1", *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    return list(read_journal(out / "journal.jsonl"))


def test_an_answer_cut_at_max_tokens_is_marked(tmp_path, models_config, cache_dir) -> None:
    with loopback(Script(default="a long answer " * 20)) as url:
        records = run_suite(tmp_path, suite(tmp_path, "max_words: 50"), models_config(url))
    for record in records:
        assert record.finish_reason == "length" and record.truncated
        assert record.max_tokens == 5 and record.output_tokens == 5
        assert record.dropped_params == []  # an OpenAI-compatible server takes them all


def test_parameters_a_provider_does_not_take_are_recorded_as_dropped() -> None:
    anthropic = ModelSpec(name="a", model="anthropic/claude-3-haiku-20240307")
    assert dropped_params(anthropic, ["temperature", "seed", "max_tokens"]) == ("seed",)
    openai = ModelSpec(name="o", model="openai/gpt-4o-mini")
    assert dropped_params(openai, ["temperature", "seed", "top_p", "max_tokens"]) == ()


def test_lone_surrogates_and_nul_are_stored_and_replayed(
    tmp_path, models_config, cache_dir
) -> None:
    with loopback(Script(default="bad \ud800 half and a \x00 nul")) as url:
        models = models_config(url)
        path = suite(tmp_path, "max_words: 50")
        first = run_suite(tmp_path, path, models)
        second = run_suite(tmp_path / "again", path, models)
    assert all(r.output == "bad \ufffd half and a \x00 nul" for r in first)
    assert all(r.cache_hit and r.output == first[0].output for r in second)


@pytest.mark.timing
def test_a_backtracking_regex_is_bounded_in_a_run(tmp_path, cache_dir) -> None:
    register_script("aaa", Script(default="a" * 30_000 + "b", honour_max_tokens=False))
    config = tmp_path / "m.yaml"
    config.write_text(json.dumps({"models": [{"name": "m", "model": "fake/aaa"}]}))
    started = time.monotonic()
    records = run_suite(
        tmp_path, suite(tmp_path, "regex: '(a+)+$'", "max_words: 5"), config, "--no-cache"
    )
    assert time.monotonic() - started < 20
    for record in records:
        regex_verdict = record.verdicts[0]
        assert not regex_verdict.passed and "gave up after 1 s" in regex_verdict.reason
        assert record.verdicts[1].passed  # the other validators still judged the answer


@pytest.mark.timing
def test_a_schema_pattern_is_bounded_and_refs_never_leave_the_schema(tmp_path) -> None:
    check = build_validator(
        {"json_schema": {"type": "object", "properties": {"x": {"pattern": "(a+)+$"}}}}
    )
    started = time.monotonic()
    verdict = check.check(json.dumps({"x": "a" * 30_000 + "b"}), CheckContext())
    assert time.monotonic() - started < 3 and not verdict.passed and "gave up" in verdict.reason
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "string"}')
    for ref in (secret.as_uri(), "secret.json", "http://127.0.0.1:9/schema.json"):
        with pytest.raises(ValueError, match="points outside the schema"):
            build_validator({"json_schema": {"$ref": ref}})
    # Even past the load check (an `$id` that makes a relative ref a file URL), nothing is read.
    sneaky = {"$id": tmp_path.as_uri() + "/", "$ref": "secret.json"}
    with pytest.raises(Exception, match=r"secret\.json"):
        list(schema_validator(sneaky).iter_errors("x"))


LONG_TASK = """\
suite: long
target: 0.9
tasks:
  - id: long
    prompt: "Write a long story about a cat named {{ name }}, with many details."
    max_tokens: 4000
    cases: [{id: c, vars: {name: Tom}}]
    validators: [single_line]
"""
SHORT_TASK = """\
suite: short
target: 0.9
tasks:
  - id: short
    prompt: "Say hi to {{ name }}."
    max_tokens: 2
    cases: [{id: c, vars: {name: Ann}}]
    validators: [single_line]
"""

LOAD_S = 1000.0
"""Loading takes this long on the clock latencies are read from (an injected jump, not a wait):
more than any 2-token answer takes on any machine, however slow or busy."""


@pytest.mark.slow
@pytest.mark.timing
@pytest.mark.timeout(300)
def test_local_latency_excludes_loading_and_a_timed_out_call(tmp_path, monkeypatch) -> None:
    """The real SmolLM2: loading moves the clock on by 1,000 s and must not count in the first
    call's latency; a story of up to 4,000 tokens cannot finish inside 0.05 s on any machine, so
    its call is cut by its timeout (and its generation stops: see the next test), and the call
    after it is timed on its own."""
    from margin.providers import local

    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    real_load, real_clock = local._load, time.perf_counter
    jumped = [0.0]
    local._LOADED.pop("smollm2-135m", None)

    def slow_load(name: str, parallel: int | None = None) -> object:
        if name not in local._LOADED:
            jumped[0] += LOAD_S
        return real_load(name, parallel)

    monkeypatch.setattr(local, "_load", slow_load)
    # Only perf_counter moves: latencies are read from it; asyncio's timeouts use monotonic.
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + jumped[0])

    def run(name: str, task: str, timeout: float, where: str) -> object:
        suite_path = tmp_path / f"{name}.yaml"
        suite_path.write_text(task)
        config = tmp_path / f"{name}-models.yaml"
        spec = {"name": name, "model": "local/smollm2-135m", "concurrency": 1,
                "timeout": timeout, "sampling": {"temperature": 0.0}}  # fmt: skip
        config.write_text(json.dumps({"models": [spec], "run": {"retries": 0}}))
        (record,) = run_suite(tmp_path / where, suite_path, config, "--no-cache")
        return record

    first = run("smol", SHORT_TASK, 120, "first")
    assert first.error is None and first.output_tokens <= 2
    assert jumped[0] == LOAD_S  # the model was loaded in this run
    assert first.latency_s is not None and first.latency_s < LOAD_S  # no loading in it
    cut = run("cut", LONG_TASK, 0.05, "cut")
    assert cut.error == "ProviderTimeout" and cut.output is None
    after = run("smol", SHORT_TASK, 120, "after")
    assert after.error is None and after.output == first.output
    assert after.latency_s is not None and after.latency_s < LOAD_S


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stopped_local_generation_ends_at_the_next_token() -> None:
    """Asked to stop, llama.cpp sends no further token: one chunk arrives, not up to 4,000."""
    import threading

    from margin.providers import local

    stop = threading.Event()
    stop.set()
    stream = local._Stream(stop)
    request = {"messages": [{"role": "user", "content": "Write a very long story."}],
               "max_tokens": 4000, "stream": True}  # fmt: skip
    local.load("smollm2-135m").handle_chat_completions(request, stream.take)
    assert stream.chunks == 1
    with pytest.raises(local.GenerationStopped):
        stream.answer("smollm2-135m")
