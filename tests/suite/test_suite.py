"""Loading the example suites and the suite format's guarantees."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from margin.suite.load import load_suite, load_suites, suite_json_schema
from margin.suite.tasks import Suite
from margin.suite.templates import render
from tests.conftest import EXAMPLE_SUITES, SUITES, run_cli


@pytest.mark.parametrize("folder", [EXAMPLE_SUITES, SUITES], ids=["examples", "fixtures"])
def test_every_example_suite_validates(folder) -> None:
    result = run_cli("validate", *sorted(str(p) for p in folder.glob("*.yaml")))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("ok ") == len(list(folder.glob("*.yaml")))


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        (EXAMPLE_SUITES, {"reviews", "routing", "extraction"}),
        (SUITES, {"support-desk", "extraction", "routing", "arithmetic", "summary", "lookup"}),
    ],
    ids=["examples", "fixtures"],
)
def test_example_suites_are_real_and_big_enough(folder, expected) -> None:
    suites = load_suites([folder])
    assert {s.suite for s in suites} == expected
    for suite in suites:
        for task in suite.tasks:
            assert len(task.cases) >= 8, (suite.suite, task.id)
            assert task.checks()


def test_the_first_runs_suites_can_decide_their_verdicts() -> None:
    """The main command's suites: a demo target of 0.8 with at least 17 cases (17 straight
    passes cross 0.8), labels balanced by hand, every typo level on every task."""
    suites = {s.suite: s for s in load_suites([EXAMPLE_SUITES])}
    reviews, routing = suites["reviews"].tasks[0], suites["routing"].tasks[0]
    assert suites["reviews"].target == suites["routing"].target == 0.8
    assert len(reviews.cases) >= 17 and len(routing.cases) >= 17
    labels = [case.expect["label"] for case in reviews.cases]
    assert labels.count("positive") == labels.count("negative") == 12
    queues = [case.expect["queue"] for case in routing.cases]
    assert {queue: queues.count(queue) for queue in set(queues)} == dict.fromkeys(
        routing.vars["queues"], 5
    )
    assert suites["extraction"].target == 0.8 and len(suites["extraction"].tasks[0].cases) >= 17
    for suite in suites.values():
        for task in suite.tasks:
            assert task.perturb is not None and task.perturb.typos, (suite.suite, task.id)
            assert set(task.perturb.model_dump(exclude_none=True)) == {"typos"}


def test_order_json_expectations_are_read_from_their_e_mails() -> None:
    """Each e-mail of the main command's extraction names its order id once, states the item
    count as the one quantity, and ends its amounts with the total charged."""
    task = load_suite(EXAMPLE_SUITES / "extraction.yaml").tasks[0]
    for case in task.cases:
        email, fields = case.vars["email"], case.expect["fields"]
        assert email.count(fields["order_id"]) == 1, case.id
        amounts = re.findall(r"\$(\d+\.\d\d)", email)
        assert float(amounts[-1]) == fields["total"], case.id
        quantities = re.findall(r"(?<![-\w.$])(\d+) (?=[A-Za-z])", email)
        assert quantities == [str(fields["items"])], case.id


def test_expected_values_are_self_consistent() -> None:
    arithmetic = load_suite(SUITES / "arithmetic.yaml").tasks[0]
    for case in arithmetic.cases:
        assert case.vars["a"] + case.vars["b"] == case.expect["sum"]
    lookup = load_suite(SUITES / "lookup.yaml").tasks[0]
    assert len(lookup.cases) >= 35  # enough that a model passing all of them can cross 0.9
    for case in lookup.cases:
        numbers = re.findall(r"\d+", case.vars["message"])
        assert numbers.count(case.expect["order"]) == 1
        assert re.search(rf"[Oo]rder[^\d]{{0,12}}{case.expect['order']}", case.vars["message"])
    desk = load_suite(SUITES / "support-desk.yaml").tasks[0]
    for case in desk.cases:
        assert case.expect["order"] in case.vars["complaint"]
    extraction = load_suite(SUITES / "extraction.yaml").tasks[0]
    for case in extraction.cases:
        fields = case.expect["fields"]
        assert fields["order_id"] in case.vars["email"]
        assert fields["customer"] in case.vars["email"]
        assert f"{fields['total']:.2f}" in case.vars["email"]
    summary = load_suite(SUITES / "summary.yaml").tasks[0]
    for case in summary.cases:
        for fact in case.expect["facts"]:
            assert fact in case.vars["report"]


def test_a_right_answer_passes_every_validator() -> None:
    """Hand-written right answers pass, so a failure in a run is the model's, not the suite's."""
    from margin.validators import CheckContext, run_validators

    answers = {
        ("support-desk", "lost-parcel"): "Order 1234 not delivered",
        (
            "extraction",
            "books",
        ): '{"order_id": "A-1042", "customer": "Anna Berg", "items": 3, "total": 14.50}',
        ("routing", "api-error"): "technical",
        ("arithmetic", "s6"): "1227",
        ("reviews", "r01"): "positive",
        ("reviews", "r24"): "negative",
        (
            "summary",
            "pricing",
        ): "Pro plan rises to $12 a month from June 1; James O'Brien e-mails customers.",
    }
    for suite in load_suites([SUITES]) + load_suites([EXAMPLE_SUITES]):
        task = suite.tasks[0]
        for case in task.cases:
            answer = answers.get((suite.suite, case.id))
            if answer is None:
                continue
            verdicts = run_validators(task.checks(), answer, CheckContext(case.vars, case.expect))
            assert all(v.passed for v in verdicts), [v.reason for v in verdicts]


def test_templates_render_with_case_vars_overriding_task_vars() -> None:
    task = load_suite(SUITES / "support-desk.yaml").tasks[0]
    case = task.cases[0]
    text = render(task.prompt, task.case_vars(case))
    assert "under 12 words" in text and "1234" in text and "{{" not in text


def test_schema_validates_the_examples_and_rejects_a_typo() -> None:
    result = run_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    validator = jsonschema.Draft202012Validator(schema)
    for path in [*SUITES.glob("*.yaml"), *EXAMPLE_SUITES.glob("*.yaml")]:
        data = yaml.safe_load(path.read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, (path, errors[0].message)
    bad = yaml.safe_load((SUITES / "routing.yaml").read_text())
    bad["tasks"][0]["validators"] = [{"max_word": 3}]
    assert list(validator.iter_errors(bad))
    assert suite_json_schema()["$defs"]["Task"]["properties"]["prompt"]["description"]


def test_config_schema_prints() -> None:
    result = run_cli("schema", "--kind", "config")
    assert result.exit_code == 0
    assert "api_key" in json.loads(result.stdout)["$defs"]["ModelSpec"]["properties"]


def test_suite_from_python_without_a_file() -> None:
    suite = Suite.model_validate(
        {
            "suite": "py",
            "target": 0.8,
            "tasks": [
                {
                    "id": "t",
                    "prompt": "Say {{ x }}",
                    "cases": [{"id": "c", "vars": {"x": 1}}],
                    "validators": ["single_line"],
                }
            ],
        }
    )
    assert suite.path is None
    assert suite.tasks[0].checks()[0].name == "single_line"


def test_duplicate_suite_names_across_files(tmp_path) -> None:
    text = (SUITES / "arithmetic.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 2  # validate refuses what plan and run refuse
    assert f"ok {tmp_path / 'a.yaml'}" in result.stdout
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'b.yaml'}: suite: suite name 'arithmetic' is also used by"
        f" {tmp_path / 'a.yaml'}"
    )
    with pytest.raises(Exception, match="also used by"):
        load_suites([tmp_path])
