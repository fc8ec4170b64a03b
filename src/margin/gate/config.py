"""What a gate checks (gate.yaml) and what it finds: findings, and the exit code they make."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from margin.errors import ConfigError
from margin.suite.source import read_yaml, validate_model

PASS, FAIL, USAGE, INSUFFICIENT = 0, 1, 2, 3


class GateConfig(BaseModel):
    """gate.yaml: what is gated and how strictly."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    models: list[str] | None = None
    """Gated models (default: every model of the run)."""
    tasks: list[str] | None = None
    """Gated tasks as `suite/task` (default: every task)."""
    targets: dict[str, float] = {}
    """Per-task target overrides, `suite/task: 0.95`."""
    max_p95_s: float | None = Field(default=None, gt=0)
    """Fail a model × task whose p95 latency is above this many seconds."""
    max_cost_per_1k: float | None = Field(default=None, ge=0)
    """Fail a model × task whose cost per 1,000 executions is above this many dollars."""
    max_silent: float | None = Field(default=None, ge=0, lt=1)
    """Fail a model × task whose silent-failure rate (wrong answers every production guard let
    through) is above this share, e.g. 0.02: fails when the rate's lower bound is above it,
    insufficient evidence while its interval straddles it."""
    max_silent_by_task: dict[str, float] = {}
    """Per-task overrides of `max_silent`, `suite/task: 0.01`."""
    min_drop: float = Field(default=0.03, ge=0, lt=1)
    """A regression must drop the pass rate by at least this much (and be significant)."""
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """Significance level of the one-sided regression test."""
    on_undecided: Literal["fail", "pass"] = "fail"
    """`fail`: undecided evidence exits 3; `pass`: it exits 0 with a warning."""


def load_gate_config(path: Path | None) -> GateConfig:
    """gate.yaml, validated like every config (file, line and field on an error)."""
    if path is None:
        return GateConfig()
    source = read_yaml(Path(path), ConfigError)
    if not isinstance(source.data, dict):
        raise source.error("a gate file is a mapping (models, tasks, targets, …)", (), ConfigError)
    return validate_model(GateConfig, source, ConfigError)


@dataclass(frozen=True)
class Finding:
    """One reason the gate did not pass: one table row."""

    model: str
    task: str
    condition: str
    baseline: str
    now: str
    difference: str
    p_value: float | None
    rule: str
    insufficient: bool = False
    """True: not enough evidence (exit 3), rather than a failure (exit 1)."""


@dataclass
class GateReport:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    on_undecided: str = "fail"

    @property
    def exit_code(self) -> int:
        if any(not f.insufficient for f in self.findings):
            return FAIL
        if any(f.insufficient for f in self.findings) and self.on_undecided == "fail":
            return INSUFFICIENT
        return PASS
