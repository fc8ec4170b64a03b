"""Where a run's time went, by part: written to the run directory as `timing.json`, printed by
`margin run` in one line.

The parts are model load (weights read and warmed), prompt processing and generation of the
models' calls, the judge's calls, and — added by the command — scoring and the report. The
local models' parts are llama.cpp's own timings (`timings.prompt_ms` / `predicted_ms` of each
response), summed per process by `margin.providers.local`; a run of remote models has none of
them, only its wall time. The file is about this invocation only (a resumed run's earlier
invocations are not in it), and it is not read by any later stage: it is not part of the
journal, whose records are unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from margin.journal.rundir import write_atomically
from margin.providers.local import LocalTimes, local_times

TIMING_FILE = "timing.json"


@dataclass
class RunTiming:
    """Seconds by part of one `margin run` invocation (local models' parts from llama.cpp)."""

    wall_s: float = 0.0
    """The run's calls, start to end (loading included; scoring and the report not)."""
    load_s: float = 0.0
    prompt_s: float = 0.0
    """Prompt processing of every call (the cached prefix is not processed again)."""
    generation_s: float = 0.0
    judge_s: float = 0.0
    """The judge's calls, prompt and generation (also inside `prompt_s` and `generation_s`)."""
    judge_prompt_s: float = 0.0
    judge_generation_s: float = 0.0
    score_s: float = 0.0
    report_s: float = 0.0
    calls: int = 0
    judge_calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens reused from the cache of a model's previous call (the shared prefix)."""
    generated_tokens: int = 0
    judges_skipped: int = 0
    """Judge verdicts not asked for: the attempt had already failed a deterministic check."""
    cases_stopped: int = 0
    """Attempts left unrun by `early_stop`: their model × task cell was already decided."""
    notes: list[str] = field(default_factory=list)

    @property
    def other_s(self) -> float:
        """The run's wall time not in a part: validators, journal, waiting, Python."""
        return max(0.0, self.wall_s - self.load_s - self.prompt_s - self.generation_s)

    def lines(self) -> list[str]:
        """One or two lines for the end of `margin run`."""
        total = self.wall_s + self.score_s + self.report_s
        tail = f" + scoring {self.score_s:.0f} + report {self.report_s:.0f}"
        if not self.calls and not self.judge_calls:  # no local model: no parts to tell
            lines = [f"time: {total:.0f} s = calls {self.wall_s:.0f}{tail}"]
        else:
            lines = [
                f"time: {total:.0f} s = load {self.load_s:.0f}"
                f" + prompts {self.prompt_s - self.judge_prompt_s:.0f}"
                f" + generation {self.generation_s - self.judge_generation_s:.0f}"
                f" + judge {self.judge_s:.0f} + other {self.other_s:.0f}{tail}"
            ]
        notes = []
        if self.calls:
            seen = self.cached_tokens + self.prompt_tokens
            notes.append(
                f"{self.calls} model and {self.judge_calls} judge calls,"
                f" {self.cached_tokens / max(seen, 1):.0%} of prompt tokens from the prompt cache"
            )
        if self.judges_skipped:
            notes.append(f"{self.judges_skipped} judge verdicts not needed (already failed)")
        if self.cases_stopped:
            notes.append(f"{self.cases_stopped} attempts left unrun by early_stop (cell decided)")
        return lines + (["; ".join(notes)] if notes else [])


def local_snapshot() -> dict[str, LocalTimes]:
    """The local models' totals so far (to take a difference across a run)."""
    return local_times()


def run_timing(before: dict[str, LocalTimes], wall_s: float) -> RunTiming:
    """The run's timing from the local totals `before` it and now, and its wall time."""
    after = local_times()

    def spent(role: str) -> LocalTimes:
        now, then = after.get(role, LocalTimes()), before.get(role, LocalTimes())
        return LocalTimes(**{k: getattr(now, k) - getattr(then, k) for k in vars(now)})

    load, model, judge = spent("load"), spent("model"), spent("judge")
    return RunTiming(
        wall_s=wall_s,
        load_s=load.load_s + load.prompt_s + load.generation_s,
        prompt_s=model.prompt_s + judge.prompt_s,
        generation_s=model.generation_s + judge.generation_s,
        judge_s=judge.prompt_s + judge.generation_s,
        judge_prompt_s=judge.prompt_s,
        judge_generation_s=judge.generation_s,
        calls=model.calls,
        judge_calls=judge.calls,
        prompt_tokens=model.prompt_tokens + judge.prompt_tokens,
        cached_tokens=model.cached_tokens + judge.cached_tokens,
        generated_tokens=model.generated_tokens + judge.generated_tokens,
    )


def write_timing(folder: Path, timing: RunTiming) -> Path:
    """Write `timing.json` into the run directory."""
    path = folder / TIMING_FILE
    data = {**asdict(timing), "other_s": timing.other_s}
    write_atomically(path, json.dumps(data, indent=2))
    return path


def read_timing(folder: Path) -> RunTiming | None:
    """The run directory's `timing.json`, or None (none written, or not readable)."""
    try:
        data = json.loads((folder / TIMING_FILE).read_text(encoding="utf-8"))
        data.pop("other_s", None)
        return RunTiming(**data)
    except (OSError, ValueError, TypeError):
        return None
