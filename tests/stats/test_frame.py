"""Reading the journal for scoring: fast, exact, and loud about damage."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin.errors import UserError
from margin.journal.records import Journal
from margin.stats import attempts_of, read_attempts
from margin.stats.frame import _from_records
from tests.stats.records import record


def write_journal(path: Path, records: list) -> Path:  # type: ignore[type-arg]
    with Journal(path) as journal:
        for r in records:
            journal.append(r)
    return path


def sample() -> list:  # type: ignore[type-arg]
    return [
        record("a", "c0", True, checks={"regex": True, "regex#2": False, "max_words": True}),
        record("a", "c1", None),  # infra error, then retried
        record("a", "c1", False, checks={"regex": False, "regex#2": True, "max_words": True}),
        record("b", "c0", True, variant="p0~typos@0.05v1", noise=("typos", 0.05)),
        record("b", "c0", True, variant="p1", paraphrase=1, cache_hit=True, saved=0.002),
    ]


def test_arrow_path_equals_the_validated_path(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "journal.jsonl", sample())
    fast, exact = read_attempts(path), _from_records(path)
    assert fast.frame.astype(str).equals(exact.frame.astype(str))
    assert fast.verdicts.astype(str).equals(exact.verdicts.astype(str))


def test_latest_record_per_attempt_wins_and_conditions_are_named(tmp_path: Path) -> None:
    frame = read_attempts(write_journal(tmp_path / "journal.jsonl", sample())).frame
    assert len(frame) == 4  # c1's infra error was retried: its latest record counts
    retried = frame[(frame["model"] == "a") & (frame["case"] == "c1")].iloc[0]
    assert bool(retried["judged"]) and retried["passed"] == 0.0
    assert list(frame["condition"].astype(str)) == ["p0", "p0", "typos@0.05", "p1"]


def test_a_second_validator_of_the_same_name_is_labelled_apart(tmp_path: Path) -> None:
    attempts = read_attempts(write_journal(tmp_path / "journal.jsonl", sample()))
    first = attempts.verdicts[attempts.verdicts["row"] == 0]
    assert list(first["validator"].astype(str)) == ["regex", "regex#2", "max_words"]
    assert list(first["passed"]) == [True, False, True]


def test_a_partial_last_line_is_not_an_attempt(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "journal.jsonl", sample())
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"schema_version": 2, "key": "a|s/t/c9|p0|r0", "mod')
    assert len(read_attempts(path).frame) == 4


def test_a_damaged_line_is_named(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "journal.jsonl", sample())
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"passed":false', '"passed":"maybe"', 1)
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_attempts(path)
    assert caught.value.line == 3


def test_records_in_memory_read_the_same(tmp_path: Path) -> None:
    path = write_journal(tmp_path / "journal.jsonl", sample())
    assert attempts_of(sample()).frame.astype(str).equals(read_attempts(path).frame.astype(str))


def test_an_empty_or_missing_journal_is_no_attempts(tmp_path: Path) -> None:
    assert read_attempts(tmp_path / "none.jsonl").frame.empty
    (tmp_path / "empty.jsonl").write_text("")
    assert read_attempts(tmp_path / "empty.jsonl").frame.empty
