"""The pytest plugin through pytester, on a run of the in-process fake model `fake/echo`.

Each pytester run is a subprocess: an in-process run imports litellm into the test process,
and pytester's module snapshot cannot undo that cleanly."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

SUITE = """suite: echoes
target: 0.65
tasks:
  - id: repeat-word
    prompt: "Say the word {{{{ word }}}} please"
    cases:
{cases}
    validators:
      - contains_all: {{from_expect: word}}
  - id: refuse-word
    prompt: "Say the word {{{{ word }}}} please"
    cases:
{cases}
    validators:
      - must_not_contain: ["please"]
  - id: strict
    target: 0.9
    prompt: "Say the word {{{{ word }}}} please"
    cases:
{cases}
    validators:
      - contains_all: {{from_expect: word}}
"""
WORDS = ["apple", "bread", "chair", "delta", "eagle", "flute", "grape", "house", "igloo", "juice"]
CASES = "\n".join(
    f"      - {{id: w{i}, vars: {{word: {w}}}, expect: {{word: {w}}}}}" for i, w in enumerate(WORDS)
)
MODELS = """models:
  - {name: echo, model: fake/echo, concurrency: 4}
run: {repeats: 1, noise: false, paraphrases: false}
"""


def test_each_model_and_task_is_a_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(pytester.path / "cache"))
    pytester.makefile(".yaml", echoes=SUITE.format(cases=CASES))
    pytester.makefile(".yaml", models=MODELS)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "--margin-suite", "echoes.yaml", "--margin-models", "models.yaml",
        "--margin-run", str(pytester.path / "run"), "-rs", "-v",
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    out = result.stdout.str()
    assert "margin[echo on echoes/repeat-word] PASSED" in out
    assert "margin[echo on echoes/refuse-word] FAILED" in out
    # 0/10: [0, 1 − 0.025^(1/10)] = [0, 0.3085]; 10/10: [0.025^(1/10), 1] = [0.6915, 1], and
    # the suite's 0.65 lies below it (10 all-pass cases cannot cross 0.7)
    assert "echo falls short on echoes/refuse-word: 0/10 0.0% [0.0, 30.9] < 0.65" in out
    assert "validator must_not_contain: 0/10 0.0%" in out and "worst condition p0" in out
    assert "example: case w0 (p0) answered 'Say the word apple please'" in out
    assert "undecided: 10/10 100.0% [69.1, 100.0] straddles the target 0.9" in out
    tasks = json.loads((pytester.path / "run" / "results.json").read_text())["tasks"]
    [undecided] = [t for t in tasks if t["task"] == "strict"]
    more = int(undecided["more_cases"])
    assert f"0.9; about {more} more new cases, one attempt each (4 in 5 chance to settle)" in out
    assert (pytester.path / "run" / "results.json").exists()


def test_without_margin_options_the_plugin_does_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_a_suite_without_models_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", echoes=SUITE.format(cases=CASES))
    result = pytester.runpytest_subprocess("--margin-suite", "echoes.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--margin-suite needs --margin-models CONFIG*"])
