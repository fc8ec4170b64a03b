"""Scoring at scale: a 1,000,000-record journal scored by `margin score`, timed and weighed.

    python bench/score_scale.py [--records 1000000] [--keep DIR]

Writes a run directory (run.json, a suite copy, journal.jsonl) with realistic records: 5
models × 10 tasks × 100 cases × 10 conditions (the prompt, 2 paraphrases, 7 noise levels) ×
20 repeats, each record with its messages (~400 characters), answer and 3 verdicts, 1% infra
errors and 5% retried keys. Then it runs `margin score RUN --format json` in a fresh process
and prints its wall seconds and peak memory last. Exits 1 above 20 s or 2 GB.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from margin.journal.records import AttemptRecord, MessageRecord
from margin.validators import Verdict

LIMIT_S, LIMIT_BYTES = 20.0, 2 << 30
MODELS = [("tiny", 0.55), ("small", 0.75), ("medium", 0.88), ("large", 0.95), ("huge", 0.97)]
TASKS = 10
CONDITIONS = (
    ["p0", "p1", "p2"]
    + [f"p0~typos@{lv}v1" for lv in (0.02, 0.05, 0.1, 0.2)]
    + [f"p0~distractors@{lv}v1" for lv in (1, 2, 3)]
)


def template() -> str:
    """One record as JSON with placeholders for what varies."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    record = AttemptRecord(
        key="@KEY@",
        model="@MODEL@",
        litellm_model="openai/@MODEL@",
        suite="bench",
        task="@TASK@",
        case="@CASE@",
        variant="@VARIANT@",
        paraphrase=0,
        noise_kind="clean",
        noise_level=0.0,
        variant_version=1,
        repeat=0,
        seed=12345,
        temperature=0.7,
        messages=[
            MessageRecord(role="system", content="You are a helpful assistant. " * 3),
            MessageRecord(role="user", content="Route the customer message to one queue. " * 7),
        ],
        output="shipping",
        verdicts=[
            Verdict(validator="choice", passed=True, score=1.0, reason="'shipping' is allowed"),
            Verdict(validator="max_words", passed=True, score=1.0, reason="1 word ≤ 3"),
            Verdict(validator="single_line", passed=True, score=1.0, reason="one line"),
        ],
        passed=True,
        partial=1.0,
        latency_s=0.5,
        input_tokens=120,
        output_tokens=3,
        cost_usd=0.0001,
        started_at=now,
        finished_at=now,
    )
    text = record.model_dump_json()
    for field, value in [("paraphrase", 0), ("noise_kind", '"clean"'), ("noise_level", 0.0),
                         ("repeat", 0), ("latency_s", 0.5), ("passed", "true"),
                         ("partial", 1.0)]:  # fmt: skip
        text = text.replace(f'"{field}":{value}', f'"{field}":@{field.upper()}@', 1)
    return text


def write_run(folder: Path, records: int) -> int:
    """The run directory; returns the journal's size in bytes."""
    (folder / "suites").mkdir(parents=True)
    suite = {
        "suite": "bench",
        "target": 0.9,
        "tasks": [
            {"id": f"task{t}", "prompt": "{{ q }}", "cases": [{"id": "c", "vars": {"q": "x"}}],
             "validators": [{"choice": {"labels": ["a", "b"]}}, {"max_words": 3},
                            {"single_line": True}]}
            for t in range(TASKS)
        ],
    }  # fmt: skip
    (folder / "suites" / "bench.yaml").write_text(json.dumps(suite), encoding="utf-8")
    models = [{"name": name, "model": f"openai/{name}"} for name, _ in MODELS]
    run = {"identity": "bench", "suites": {"bench": None}, "models": models, "settings": {}}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    line = template()
    verdict_fail = '{"validator":"choice","passed":true'
    rng = random.Random(7)
    per_cell = records // (len(MODELS) * TASKS * 100 * len(CONDITIONS))
    written = 0
    with (folder / "journal.jsonl").open("w", encoding="utf-8") as out:
        for model, skill in MODELS:
            for t in range(TASKS):
                for c in range(100):
                    case_skill = min(1.0, max(0.0, rng.gauss(skill, 0.1)))
                    for variant in CONDITIONS:
                        kind, level, paraphrase = "clean", 0.0, 0
                        if "~" in variant:
                            kind, level = variant.split("~")[1].removesuffix("v1").split("@")
                        elif variant != "p0":
                            paraphrase = int(variant[1:])
                        for r in range(per_cell):
                            ok = rng.random() < case_skill - (0.1 if kind != "clean" else 0.0)
                            text = (
                                line.replace("@KEY@", f"{model}|bench/task{t}/c{c}|{variant}|r{r}")
                                .replace("@MODEL@", model)
                                .replace("@TASK@", f"task{t}")
                                .replace("@CASE@", f"c{c}")
                                .replace("@VARIANT@", variant)
                                .replace("@PARAPHRASE@", str(paraphrase))
                                .replace("@NOISE_KIND@", f'"{kind}"')
                                .replace("@NOISE_LEVEL@", str(float(level)))
                                .replace("@REPEAT@", str(r))
                                .replace("@LATENCY_S@", f"{rng.uniform(0.2, 2.0):.3f}")
                                .replace("@PASSED@", "true" if ok else "false")
                                .replace("@PARTIAL@", "1.0" if ok else "0.6666666666666666")
                            )
                            if not ok:
                                text = text.replace(
                                    verdict_fail, verdict_fail.replace("true", "false")
                                )
                            if rng.random() < 0.05:  # a retried key: an infra error first
                                error = text.replace('"error":null', '"error":"ServerError"')
                                error = re.sub(  # as the runner writes one: no verdicts
                                    r'"verdicts":\[.*?\](?=,"passed")', '"verdicts":[]', error
                                )
                                error = error.replace('"passed":true', '"passed":null')
                                error = error.replace('"passed":false', '"passed":null')
                                out.write(error + "\n")
                                written += 1
                            if rng.random() < 0.01:  # an infra error that stays
                                text = text.replace('"error":null', '"error":"RateLimited"')
                            out.write(text + "\n")
                            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Write the run here and keep it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch) / "run"
        started = time.perf_counter()
        written = write_run(folder, args.records)
        size = (folder / "journal.jsonl").stat().st_size
        took = time.perf_counter() - started
        print(f"wrote {written:,} records ({size / 1e6:,.0f} MB) in {took:.1f} s")
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "margin.cli.main", "score", str(folder), "--format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        sys.exit(1)
    data = json.loads(result.stdout)
    judged = sum(row["n"] for row in data["models"])
    print(f"scored {judged:,} judged attempts; recommendation: {data['recommendation']['model']}")
    gigabytes = peak / 2**30
    print(
        f"seconds {seconds:.1f} (limit {LIMIT_S:.0f}); peak memory {gigabytes:.2f} GB (limit 2 GB)"
    )
    if seconds > LIMIT_S or peak > LIMIT_BYTES:
        sys.exit(1)


if __name__ == "__main__":
    main()
