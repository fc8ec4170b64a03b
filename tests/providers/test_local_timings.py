"""The local provider's timings: llama.cpp's own prompt and generation times per role, and the
prompt cache that lets consecutive calls of one task reuse their shared prefix."""

from __future__ import annotations

import pytest

from margin.execute.timing import RunTiming, run_timing
from margin.providers import local
from margin.providers.local import CALL_ROLE, LocalTimes

pytestmark = pytest.mark.timeout(600)

SYSTEM = "You label support tickets. " * 30  # a long shared prefix, like a task's instructions


def test_a_streamed_answer_reports_llama_cpp_timings() -> None:
    stream = local._Stream(None)
    stream.take({"choices": [{"delta": {"content": "hi"}, "finish_reason": None}]})
    timings = {"prompt_n": 7, "prompt_ms": 250.0, "cache_n": 252, "predicted_n": 8,
               "predicted_ms": 500.0}  # fmt: skip
    stream.take({"choices": [], "usage": {"prompt_tokens": 259}, "timings": timings})
    times = stream.times()
    assert times == LocalTimes(0.0, 0.25, 0.5, 1, 7, 252, 8)


def test_the_breakdown_counts_judge_calls_apart_from_the_models() -> None:
    before = local.local_times()
    local._count("model", LocalTimes(prompt_s=2.0, generation_s=3.0, calls=4, prompt_tokens=10))
    local._count("judge", LocalTimes(prompt_s=1.0, generation_s=1.0, calls=1))
    local._count("load", LocalTimes(load_s=5.0, prompt_s=0.5, generation_s=0.5))
    timing = run_timing(before, wall_s=20.0)
    # approx: `before` holds whatever earlier tests' local calls measured; a difference of sums
    # of those floats is not exact
    assert (timing.load_s, timing.prompt_s, timing.generation_s, timing.judge_s) == pytest.approx(
        (6.0, 3.0, 4.0, 2.0)
    )
    assert (timing.calls, timing.judge_calls) == (4, 1)
    assert timing.other_s == pytest.approx(7.0)
    line = RunTiming(**{**vars(timing), "score_s": 1.0, "report_s": 2.0}).lines()[0]
    assert line == (
        "time: 23 s = load 6 + prompts 2 + generation 3 + judge 2 + other 7 + scoring 1 + report 2"
    )


def test_consecutive_calls_with_a_shared_prefix_reuse_the_prompt_cache() -> None:
    if local.runtime_available() is False:
        pytest.skip("the local runtime is not installed")
    try:
        local.load("smollm2-135m")
    except local.ModelFileError:
        pytest.skip("smollm2-135m is not installed")
    counted = []
    for case in ("order 1 never came", "order 2 is broken"):
        before = local.local_times().get("model", LocalTimes())
        token = CALL_ROLE.set("model")
        try:
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": case}]
            local.chat("smollm2-135m", messages, {"max_tokens": 2, "temperature": 0.0})
        finally:
            CALL_ROLE.reset(token)
        after = local.local_times()["model"]
        counted.append((after.cached_tokens - before.cached_tokens, after.calls - before.calls))
    # the second call processes only what follows the shared system prompt
    assert counted[1][1] == 1 and counted[1][0] > 150
