"""`margin import promptfoo`: promptfoo configs become suites that validate and run, with
promptfoo's assertion semantics kept, and nothing lost silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from margin.gate import GateConfig
from margin.integrations.promptfoo import (
    assertion_from_string,
    convert_assertion,
    import_config,
    litellm_id,
    to_jinja,
)
from margin.journal.records import read_journal
from margin.suite.load import load_suite
from margin.validators import build_validator
from margin.validators.base import CheckContext
from tests.conftest import run_cli

FIXTURES = Path(__file__).parents[1] / "fixtures" / "promptfoo"
CONFIGS = sorted(p.name for p in FIXTURES.iterdir() if (p / "promptfooconfig.yaml").is_file())


def test_there_are_fifteen_configs_or_more() -> None:
    assert len(CONFIGS) >= 15


@pytest.mark.parametrize("name", CONFIGS)
def test_each_config_imports_validates_and_runs_on_the_fake_provider(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    suite, models, gate = tmp_path / f"{name}.yaml", tmp_path / "models.yaml", tmp_path / "g.yaml"
    result = run_cli("import", "promptfoo", str(FIXTURES / name / "promptfooconfig.yaml"),
                     "--out", str(suite), "--models-out", str(models), "--gate-out", str(gate))  # fmt: skip
    assert result.exit_code == 0, result.output
    text = suite.read_text()
    assert text.startswith(f"# Imported from {FIXTURES / name / 'promptfooconfig.yaml'}")
    loaded = load_suite(suite)
    assert run_cli("validate", str(suite)).exit_code == 0
    if gate.exists():
        GateConfig.model_validate(yaml.safe_load(gate.read_text()))
    fake = tmp_path / "fake.yaml"
    fake.write_text(json.dumps({"models": [{"name": "echo", "model": "fake/echo"}],
                                "run": {"noise": False, "paraphrases": False}}))  # fmt: skip
    run = run_cli("run", str(suite), "--models", str(fake), "--repeats", "1", "--out",
                  str(tmp_path / "run"))  # fmt: skip
    assert run.exit_code == 0, run.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len(records) == sum(len(task.cases) for task in loaded.tasks)
    assert all(r.error in (None, "Unscored") for r in records)


def test_what_does_not_convert_is_listed_and_strict_refuses_it(tmp_path: Path) -> None:
    config = FIXTURES / "custom-code" / "promptfooconfig.yaml"
    out = tmp_path / "s.yaml"
    strict = run_cli("import", "promptfoo", str(config), "--out", str(out), "--strict",
                     "--models-out", str(tmp_path / "m.yaml"))  # fmt: skip
    assert strict.exit_code == 2
    assert "javascript" in strict.output and "--strict writes nothing" in strict.stderr
    assert not out.exists() and not (tmp_path / "m.yaml").exists()
    loose = run_cli("import", "promptfoo", str(config), "--out", str(out),
                    "--models-out", str(tmp_path / "m.yaml"))  # fmt: skip
    assert loose.exit_code == 0
    imported = import_config(config, "custom")
    lost = {(loss.where, loss.what) for loss in imported.lost}
    assert ("tests[0]", "javascript") in lost
    assert ("tests[0]", "options.transform") in lost
    assert ("tests[1]", "assert-set with a threshold") in lost
    assert ("tests[1]", "icontains") in lost  # its transform would change what it checks
    assert ("prompts[1]", "file://prompt_fn.py") in lost
    assert {w for w, _ in lost} >= {"providers[0]", "providers[1]", "providers[2]"}
    header = out.read_text().split("suite:")[0]
    assert header.count("\n#   - ") == len(imported.lost) + len(imported.changed)
    assert "javascript — runs JavaScript" in header


def test_an_existing_file_is_not_overwritten_without_force(tmp_path: Path) -> None:
    config = FIXTURES / "getting-started" / "promptfooconfig.yaml"
    out = tmp_path / "s.yaml"
    out.write_text("mine")
    args = ["import", "promptfoo", str(config), "--out", str(out), "--models-out",
            str(tmp_path / "m.yaml")]  # fmt: skip
    refused = run_cli(*args)
    assert refused.exit_code == 2 and "--force" in refused.stderr and out.read_text() == "mine"
    assert run_cli(*args, "--force").exit_code == 0 and out.read_text() != "mine"


def test_a_broken_config_is_one_line_with_its_line() -> None:
    result = run_cli("import", "promptfoo", str(FIXTURES / "nope" / "promptfooconfig.yaml"))
    assert result.exit_code == 2 and "no such promptfoo config" in result.stderr


def verdict(item: dict[str, Any], output: str) -> bool | None:
    """The converted validator's verdict on `output` (the case's expect filled in)."""
    check = convert_assertion(item, FIXTURES)
    assert check.entry is not None
    entry = json.loads(json.dumps(check.entry).replace("{key}", "v1"))
    validator = build_validator(entry)
    expect = {"v1": check.expect} if check.expect is not None else {}
    return validator.check(output, CheckContext({}, expect)).passed


@pytest.mark.parametrize(
    ("item", "output", "passed"),
    [
        # promptfoo: `contains` is case-sensitive, `icontains` is not.
        ({"type": "contains", "value": "Paris"}, "It is Paris.", True),
        ({"type": "contains", "value": "Paris"}, "it is paris.", False),
        ({"type": "icontains", "value": "Paris"}, "it is PARIS.", True),
        ({"type": "not-contains", "value": "sorry"}, "Sorry, no.", True),
        ({"type": "not-icontains", "value": "sorry"}, "Sorry, no.", False),
        # -any / -all take a list or a comma-separated string.
        ({"type": "contains-any", "value": "cat, dog"}, "a dog", True),
        ({"type": "contains-any", "value": ["Cat", "Dog"]}, "a dog", False),
        ({"type": "icontains-any", "value": ["Cat", "Dog"]}, "a dog", True),
        ({"type": "contains-all", "value": ["red", "blue"]}, "red and blue", True),
        ({"type": "contains-all", "value": ["red", "blue"]}, "red and Blue", False),
        ({"type": "icontains-all", "value": "red, blue"}, "RED and Blue", True),
        ({"type": "not-contains-any", "value": ["x", "y"]}, "only y", False),
        ({"type": "not-icontains-any", "value": ["X"]}, "abc", True),
        # `equals` and `starts-with` are case-sensitive.
        ({"type": "equals", "value": "Yes"}, "Yes", True),
        ({"type": "equals", "value": "Yes"}, "yes", False),
        ({"type": "equals", "value": 4}, "4", True),
        ({"type": "not-equals", "value": "No"}, "No", False),
        ({"type": "not-equals", "value": "No"}, "No way", True),
        ({"type": "starts-with", "value": "Sure"}, "Sure, here", True),
        ({"type": "starts-with", "value": "Sure"}, "sure, here", False),
        ({"type": "not-starts-with", "value": "As an AI"}, "As an AI, I", False),
        ({"type": "regex", "value": r"^\d{4}-\d{2}$"}, "2025-03", True),
        ({"type": "not-regex", "value": "[A-Z]"}, "all lower", True),
        # `is-json`: the whole output parses (a fenced block or prose around it does not).
        ({"type": "is-json"}, '{"a": 1}', True),
        ({"type": "is-json"}, '```json\n{"a": 1}\n```', False),
        ({"type": "is-json"}, 'Here: {"a": 1}', False),
        ({"type": "is-json", "value": {"type": "object", "required": ["b"]}}, '{"a": 1}', False),
        ({"type": "is-json", "value": "type: object\nrequired: [a]"}, '{"a": 1}', True),
        # `contains-json`: a JSON object anywhere, prose around it allowed; with a schema, one
        # of the objects must match it.
        ({"type": "contains-json"}, 'Sure! {"a": 1} Done.', True),
        ({"type": "contains-json"}, "No JSON here.", False),
        (
            {"type": "contains-json", "value": {"type": "object", "required": ["b"]}},
            'First {"a": 1}, then {"b": 2}.',
            True,
        ),
    ],
)
def test_each_assertion_keeps_promptfoos_meaning(
    item: dict[str, Any], output: str, passed: bool
) -> None:
    assert verdict(item, output) is passed


def test_threshold_latency_cost_and_rubrics_are_said_as_they_convert(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "prompts": ["Q: {{q}}"],
                "providers": ["openai:gpt-4.1-mini"],
                "tests": [
                    {
                        "vars": {"q": "capital of France"},
                        "threshold": 0.5,
                        "assert": [
                            {"type": "icontains", "value": "{{ q.split(' ')[-1] }}"},
                            {"type": "llm-rubric", "value": "Names {{q}} correctly"},
                            {"type": "latency", "threshold": 2500},
                            {"type": "cost", "threshold": 0.001},
                        ],
                    }
                ],
            }
        )
    )
    imported = import_config(config, "t")
    task = imported.suite["tasks"][0]
    case = task["cases"][0]
    # Assertion values are rendered with the test's vars, as promptfoo renders them.
    assert case["expect"] == {"v1": ["France"], "v2": "Names capital of France correctly"}
    assert task["max_p95_s"] == 2.5
    assert imported.gate == {"max_p95_s": 2.5, "max_cost_per_1k": 1.0}
    judge = task["validators"][1]["judge"]["rubric"]
    assert "{{ expect.v2 }}" in judge and "{{ output }}" in judge
    shifted = " ".join(f"{c.where} {c.what}" for c in imported.changed)
    assert all(word in shifted for word in ("threshold 0.5", "latency", "cost"))


def test_csv_cells_read_as_promptfoo_reads_them() -> None:
    assert assertion_from_string("icontains:bonjour") == {"type": "icontains", "value": "bonjour"}
    assert assertion_from_string("fn:output.length < 9")["type"] == "javascript"
    assert assertion_from_string("grade:is polite") == {"type": "llm-rubric", "value": "is polite"}
    assert assertion_from_string("similar(0.8):hello") == {
        "type": "similar", "value": "hello", "threshold": 0.8,
    }  # fmt: skip
    assert assertion_from_string("is-json") == {"type": "is-json"}
    assert assertion_from_string("Paris: the capital") == {
        "type": "equals", "value": "Paris: the capital",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "model", "key"),
    [
        ("openai:gpt-4o-mini", "openai/gpt-4o-mini", "OPENAI_API_KEY"),
        ("openai:chat:gpt-4o", "openai/gpt-4o", "OPENAI_API_KEY"),
        ("anthropic:messages:claude-3-5-haiku-latest", "anthropic/claude-3-5-haiku-latest",
         "ANTHROPIC_API_KEY"),
        ("ollama:chat:llama3.2", "ollama_chat/llama3.2", None),
        ("ollama:qwen2.5:0.5b", "ollama/qwen2.5:0.5b", None),
        ("vertex:gemini-2.0-flash", "vertex_ai/gemini-2.0-flash", None),
        ("mistral:mistral-small-latest", "mistral/mistral-small-latest", "MISTRAL_API_KEY"),
    ],
)  # fmt: skip
def test_providers_become_litellm_ids(provider: str, model: str, key: str | None) -> None:
    assert litellm_id(provider) == (model, key)


def test_nunjucks_converts_or_is_refused() -> None:
    assert to_jinja("Facts: {{ facts | dump }}") == "Facts: {{ facts | tojson }}"
    with pytest.raises(ValueError, match="cannot read other files"):
        to_jinja("{% include 'header.njk' %} {{ q }}")
    with pytest.raises(ValueError, match="not a template"):
        to_jinja("{{ q ")


def test_a_var_some_tests_lack_renders_empty_as_in_nunjucks(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['Hello {{name}} from {{place}}']\n"
        "tests:\n"
        "  - vars: {name: Ann}\n"
        "    assert: [{type: icontains, value: ann}]\n"
        "  - vars: {name: Bo, place: Oslo}\n"
        "    assert: [{type: icontains, value: bo}]\n"
    )
    out = tmp_path / "s.yaml"
    result = run_cli("import", "promptfoo", str(config), "--out", str(out))
    assert result.exit_code == 0, result.output
    task = load_suite(out).tasks[0]
    assert task.vars == {"place": ""} and "rendered empty" in out.read_text()


def test_a_suite_that_would_not_validate_is_not_written(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(  # compiles, but margin's sandbox refuses to render it
        "prompts: ['Q {{ q.__class__ }}']\n"
        "tests:\n  - vars: {q: a}\n    assert: [{type: icontains, value: a}]\n"
    )
    out = tmp_path / "s.yaml"
    bad = run_cli("import", "promptfoo", str(config), "--out", str(out),
                  "--models-out", str(tmp_path / "m.yaml"))  # fmt: skip
    assert bad.exit_code == 2, bad.output
    assert "the converted suite does not validate" in bad.stderr
    assert not out.exists() and not list(tmp_path.glob(".*importing"))


def test_getting_started_keeps_its_tests_together() -> None:
    """promptfoo's getting-started config: 2 prompts × 2 tests, each test with its own
    assertion (`contains` against `icontains`), is 2 tasks × 2 cases, or 1 task with 1
    paraphrase and 2 cases."""
    config = FIXTURES / "getting-started" / "promptfooconfig.yaml"
    tasks = import_config(config, "g").suite["tasks"]
    assert [len(task["cases"]) for task in tasks] == [2, 2]
    assert all("validators" not in task for task in tasks)  # no defaultTest: every case its own
    sensitive = [
        case["validators"][0]["contains_all"]["case_sensitive"] for case in tasks[0]["cases"]
    ]
    assert sensitive == [True, False]
    (one,) = import_config(config, "g", prompts_as="paraphrases").suite["tasks"]
    assert len(one["paraphrases"]) == 1 and len(one["cases"]) == 2


def test_paraphrases_need_prompts_with_the_same_variables(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['Hello {{name}}', 'Hi {{name}} from {{place}}']\n"
        "tests:\n  - vars: {name: Ann, place: Oslo}\n    assert: [{type: icontains, value: ann}]\n"
    )
    result = run_cli("import", "promptfoo", str(config), "--out", str(tmp_path / "s.yaml"),
                     "--prompts-as", "paraphrases")  # fmt: skip
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--prompts-as tasks" in result.stderr
    assert not (tmp_path / "s.yaml").exists()


def test_defaulttest_checks_are_the_tasks_and_each_tests_its_cases() -> None:
    tasks = import_config(FIXTURES / "default-test" / "promptfooconfig.yaml", "d").suite["tasks"]
    (task,) = tasks
    assert [next(iter(v)) for v in task["validators"]] == ["must_not_contain"]
    assert [[next(iter(v)) for v in c["validators"]] for c in task["cases"]] == [
        ["contains_all", "contains_all"],
        ["contains_any"],
    ]


@pytest.mark.parametrize("name", CONFIGS)
def test_no_task_is_split_by_its_tests_assertions(name: str) -> None:
    """One task per prompt: tests that check differently are cases of the same task."""
    imported = import_config(FIXTURES / name / "promptfooconfig.yaml", "x")
    tasks = imported.suite["tasks"]
    prompts = {task["prompt"] for task in tasks}
    assert len(tasks) == len(prompts)
    assert all(len(task["cases"]) == imported.cases // len(tasks) for task in tasks)
