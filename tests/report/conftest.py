"""A run directory built by hand: a suite copy, run.json and a journal of chosen records."""

from __future__ import annotations

import json
from pathlib import Path

from margin.journal.records import Journal, MessageRecord
from margin.validators import Verdict
from tests.stats.records import record

HOSTILE = (
    "<script>document.title='PWNED'</script>"
    "<img src=x onerror=\"document.title='PWNED2'\">"
    '<a href="javascript:alert(1)">click</a> {{ 7*7 }} </textarea></pre></details>'
    "<iframe src='https://example.com/'></iframe><link rel=stylesheet href='http://example.com/x.css'>"
)
SUITE = f"""suite: s
description: "{HOSTILE.replace('"', "'")}"
target: 0.9
tasks:
  - id: t
    description: "<b>bold</b> {{{{ not a template }}}}"
    prompt: "Say {{{{ x }}}}"
    cases:
      - id: c
        vars: {{x: "1"}}
    validators:
      - must_not_contain: ["<script>"]
"""


def make_run(
    folder: Path,
    records: list,
    models: list[dict] | None = None,
    settings: dict | None = None,  # type: ignore[type-arg]
) -> Path:
    (folder / "suites").mkdir(parents=True, exist_ok=True)
    (folder / "suites" / "s.yaml").write_text(SUITE, encoding="utf-8")
    names = sorted({r.model for r in records})
    run = {
        "identity": "test",
        "written_at": "2026-11-23T00:00:00+00:00",
        "suites": {"s": None},
        "models": models or [{"name": n, "model": f"openai/{n}", "params": "1B"} for n in names],
        "settings": settings or {},
    }
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    with Journal(folder / "journal.jsonl") as journal:
        for r in records:
            journal.append(r)
    return folder


def hostile_failure(model: str, case: str, size: int = 0) -> object:
    """A failing attempt whose prompt, answer and verdict reason are all hostile."""
    base = record(model, case, False, checks={"must_not_contain": False})
    output = HOSTILE + ("x" * size)
    return base.model_copy(
        update={
            "messages": [MessageRecord(role="user", content=f"Say {HOSTILE}")],
            "output": output,
            "verdicts": [
                Verdict(
                    validator="must_not_contain",
                    passed=False,
                    score=0.0,
                    reason=f"contains {HOSTILE!r}",
                )
            ],
        }
    )
