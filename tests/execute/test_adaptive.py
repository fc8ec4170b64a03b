"""Adaptive repeats end to end on the in-process fake model: fewer calls, same verdicts,
exact resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from margin.execute.rounds import round_sizes
from margin.journal.records import read_journal
from tests.conftest import run_cli

WORDS = ["apple", "bread", "chair", "delta", "eagle", "flute", "grape", "house", "igloo", "juice"]
CASES = "\n".join(
    f"      - {{id: w{i}, vars: {{word: {w}}}, expect: {{word: {w}}}}}" for i, w in enumerate(WORDS)
)
SUITE = f"""suite: echoes
target: 0.9
tasks:
  - id: repeat-word
    prompt: "Say the word {{{{ word }}}} please"
    cases:
{CASES}
    validators:
      - contains_all: {{from_expect: word}}
  - id: refuse-word
    prompt: "Say the word {{{{ word }}}} please"
    cases:
{CASES}
    validators:
      - must_not_contain: ["please"]
"""


def test_round_sizes_grow_by_half_to_the_cap() -> None:
    assert round_sizes(20) == [2, 3, 5, 8, 12, 18, 20]
    assert round_sizes(1) == [1]


def test_adaptive_run_stops_decided_cells_and_resumes_exactly(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    suite = tmp_path / "echoes.yaml"
    suite.write_text(SUITE)
    models = tmp_path / "models.yaml"
    models.write_text(json.dumps({
        "models": [{"name": "echo", "model": "fake/echo"}],
        "run": {"noise": False, "paraphrases": False},
    }))  # fmt: skip
    out = tmp_path / "run"
    args = [
        "run",
        str(suite),
        "--models",
        str(models),
        "--out",
        str(out),
        "--adaptive",
        "--max-repeats",
        "8",
    ]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    counts = Counter(r.task for r in read_journal(out / "journal.jsonl"))
    # refuse-word fails every attempt: decided (falls short) after the first round of 2 repeats;
    # repeat-word passes every attempt, but its repeats are copies (10 cases of evidence), so
    # the sequence cannot show 0.9 and it runs to the cap of 8.
    assert counts == {"refuse-word": 10 * 2, "repeat-word": 10 * 8}
    assert (
        "echo falls short on echoes/refuse-word" in result.stdout or "falls short" in result.stdout
    )
    again = run_cli(*args)
    assert again.exit_code == 0, again.output
    assert "margin: 40 attempts, 40 already in the journal" in again.stderr  # the first round
    assert len(list(read_journal(out / "journal.jsonl"))) == 100  # nothing repeated on resume
