"""Check delivery-policy estimates against policies run for real, on the local family.

    python -m examples.policy_check [--repeats 3] [--executions 2] [--suite SUITE] [--out DIR]

1. Runs the suite on qwen-0.5b and qwen-1.5b at temperature 0.8 (seed 1, `--repeats` per
   prompt) and estimates the policies from those recorded repeats (no new calls).
2. Runs the same suite with another seed (2) and `--policy`, so each policy executes for real
   (`--executions` per prompt).
3. Prints estimate and measurement side by side (Markdown), and whether each measured rate
   falls inside its estimate's 95% interval.

The local models cost nothing, so both are given a nominal price per million tokens for the
check (0.10 and 0.30 dollars), which makes cost count the tokens each policy really spends.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

MODELS = {"qwen-0.5b": 0.10, "qwen-1.5b": 0.30}
POLICIES = ["retry(qwen-0.5b, 2)", "cascade(qwen-0.5b, qwen-1.5b)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--executions", type=int, default=2)
    parser.add_argument("--suite", default="tests/fixtures/suites/lookup.yaml")
    parser.add_argument("--out", type=Path, default=Path("reports/policy-check"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    family = yaml.safe_load(Path("configs/local.yaml").read_text(encoding="utf-8"))
    models = []
    for spec in family["models"]:
        if spec["name"] in MODELS:
            price = MODELS[spec["name"]]
            spec["sampling"] = {**spec.get("sampling", {}), "temperature": 0.8}
            spec["price"] = {"input_per_mtok": price, "output_per_mtok": price}
            models.append(spec)
    config = args.out / "models.yaml"
    run = {"repeats": args.repeats, "paraphrases": True, "noise": False, "policies": POLICIES}
    config.write_text(yaml.safe_dump({"models": models, "run": run}), encoding="utf-8")
    estimated, measured = args.out / "estimate", args.out / "measured"
    margin = str(Path(sys.executable).with_name("margin"))  # the venv's console script
    base = [margin, "run", args.suite, "--models", str(config)]
    subprocess.run([*base, "--seed", "1", "--out", str(estimated)], check=True)
    policy_flags = [part for policy in POLICIES for part in ("--policy", policy)]
    again = ["--seed", "2", "--repeats", str(args.executions), "--out", str(measured)]
    subprocess.run([*base, *again, *policy_flags], check=True)
    print(side_by_side(estimated / "results.json", measured / "results.json"))


def side_by_side(estimated: Path, measured: Path) -> str:
    """A Markdown table: each policy × task, estimated (run 1) against measured (run 2)."""
    guesses = json.loads(estimated.read_text(encoding="utf-8"))["policies"]
    runs = {
        (r["policy"], r["suite"], r["task"]): r
        for r in json.loads(measured.read_text(encoding="utf-8"))["policy_runs"]
    }
    lines = [
        "| policy | task | estimated (run 1) | measured (run 2) | inside | calls est · meas"
        " | cost / 1,000 est · meas | p95 est · meas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for guess in guesses:
        run = runs.get((guess["policy"], guess["suite"], guess["task"]))
        if run is None:
            continue
        inside = "yes" if guess["low"] <= run["rate"] <= guess["high"] else "**no**"
        lines.append(
            f"| {guess['policy']} | {guess['suite']}/{guess['task']}"
            f" | {guess['rate']:.1%} [{guess['low']:.1%}, {guess['high']:.1%}]"
            f" | {run['passes']}/{run['n']} {run['rate']:.1%} [{run['low']:.1%}, {run['high']:.1%}]"
            f" | {inside} | {guess['calls']:.2f} · {run['calls']:.2f}"
            f" | ${guess['cost_per_1000']:.4f} · ${run['cost_per_1000']:.4f}"
            f" | {guess['latency_p95']:.2f} s · {run['latency_p95']:.2f} s |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
