"""The gate: does each gated model still clear its bar, and did this change make it worse?

Reads results.json and the journals (never a model); a run directory without results.json is
scored first by the score stage (`margin.results.score`). Exit codes: 0 pass; 1 a gated model ×
task does not cross its target, breaks a latency or cost limit, or regresses against the
baseline; 2 a usage error (one line); 3 insufficient evidence (undecided cells, or a comparison
too small to detect the configured regression) — unless `on_undecided: pass`.

`config.py`: gate.yaml and the findings; `checks.py`: `run_gate` — target, limits and the
baseline's fingerprints; `baseline.py`: the regression test against a baseline; `output.py`:
the job summary and JUnit XML. The package itself loads only the light `config` and `output`
(`margin schema --kind gate` needs no statistics): import `run_gate` from `margin.gate.checks`.
"""

from margin.gate.config import (
    FAIL,
    INSUFFICIENT,
    PASS,
    USAGE,
    Finding,
    GateConfig,
    GateReport,
    load_gate_config,
)
from margin.gate.output import gate_junit, gate_markdown

__all__ = [
    "FAIL",
    "INSUFFICIENT",
    "PASS",
    "USAGE",
    "Finding",
    "GateConfig",
    "GateReport",
    "gate_junit",
    "gate_markdown",
    "load_gate_config",
]
