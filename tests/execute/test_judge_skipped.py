"""The judge only where it decides: not asked when a deterministic check already failed the
attempt — unless the judge is a production guard and no other guard caught the answer (then
its verdict decides whether the failure is silent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from margin.journal.records import read_journal
from margin.providers.fake import register_script
from margin.providers.scripts import Rule, Script
from margin.stats.frame import read_attempts
from tests.conftest import run_cli

SUITE = """\
suite: desk
target: 0.5
tasks:
  - id: title
    prompt: "Title for: {{ complaint }}"
    cases:
      - {id: good, vars: {complaint: alpha}, expect: {word: alpha}}
      - {id: long, vars: {complaint: bravo}, expect: {word: bravo}}
      - {id: wrong, vars: {complaint: charlie}, expect: {word: charlie}}
    validators:
      - max_words: 3
      - contains_all: {from_expect: word}
      - judge: {rubric: "Complaint: {{ complaint }}. Title: {{ output }}. Keeps the request?"}
  - id: graded
    prompt: "Title for: {{ complaint }}"
    cases:
      - {id: wrong, vars: {complaint: charlie}, expect: {word: charlie}}
    validators:
      - contains_all: {from_expect: word}
      - judge: {rubric: "Title: {{ output }}. Does it name {{ expect.word }}?"}
"""


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    register_script("titler", Script(rules=[
        Rule("alpha", "alpha parcel lost"),
        Rule("bravo", "bravo order arrived broken and late again"),
        Rule("charlie", "refund request"),
    ]))  # fmt: skip
    verdict = {"verdict": "pass", "score": 1.0, "reason": "fine"}
    register_script("grader", Script(default=json.dumps(verdict)))
    (tmp_path / "desk.yaml").write_text(SUITE)
    (tmp_path / "models.yaml").write_text(json.dumps({
        "models": [{"name": "m", "model": "fake/titler"}, {"name": "judge", "model": "fake/grader"}],
        "run": {"noise": False, "paraphrases": False, "repeats": 1, "judge": {"model": "judge"}},
    }))  # fmt: skip
    out = tmp_path / "run"
    result = run_cli(
        "run", str(tmp_path / "desk.yaml"), "--models", str(tmp_path / "models.yaml"),
        "--only", "m", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 judge verdicts not needed" in result.stdout
    return out / "journal.jsonl"


def test_the_judge_is_asked_only_where_its_verdict_can_change_the_record(journal: Path) -> None:
    records = {(r.task, r.case): r for r in read_journal(journal)}
    judged = {key: [v.validator for v in r.verdicts] for key, r in records.items()}
    assert judged == {
        ("title", "good"): ["max_words", "contains_all", "judge"],
        # max_words, a guard, failed: the attempt fails and is caught whatever the judge says
        ("title", "long"): ["max_words", "contains_all"],
        # only the reference check failed: the judge (a guard here) decides if it is silent
        ("title", "wrong"): ["max_words", "contains_all", "judge"],
        # a judge that reads `expect` is no guard: the failed reference check settles it all
        ("graded", "wrong"): ["contains_all"],
    }
    assert [records[k].judge_skipped for k in sorted(records)] == [True, False, True, False]
    long, wrong = records[("title", "long")], records[("title", "wrong")]
    assert long.passed is False and long.partial == 0.5  # of the two validators asked
    assert long.guards_passed is False and long.guards_failed == ["max_words"]
    assert wrong.passed is False and wrong.guards_passed is True  # silent: every guard passed
    graded = records[("graded", "wrong")]
    assert graded.passed is False and graded.partial == 0.0 and graded.guards_passed is True


def test_a_skipped_judge_is_not_counted_in_its_statistics(journal: Path) -> None:
    attempts = read_attempts(journal)
    frame = attempts.frame.reset_index(drop=True)
    rows = attempts.verdicts.assign(task=frame["task"].to_numpy()[attempts.verdicts["row"]])
    counts = rows.groupby(["task", "validator"], observed=True).size().to_dict()
    assert counts == {
        ("graded", "contains_all"): 1,
        ("title", "contains_all"): 3,
        ("title", "judge"): 2,
        ("title", "max_words"): 3,
    }
