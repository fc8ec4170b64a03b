"""Journal records built by hand for statistics tests."""

from __future__ import annotations

from datetime import UTC, datetime

from scipy import stats

from margin.journal.records import AttemptRecord
from margin.validators import Verdict

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def record(
    model: str,
    case: str,
    passed: bool | None,
    *,
    suite: str = "s",
    task: str = "t",
    variant: str = "p0",
    paraphrase: int = 0,
    noise: tuple[str, float] = ("clean", 0.0),
    repeat: int = 0,
    checks: dict[str, bool] | None = None,
    latency: float = 1.0,
    cost: float | None = 0.001,
    saved: float = 0.0,
    cache_hit: bool = False,
) -> AttemptRecord:
    """One attempt; `passed=None` is an infra error. `checks` names each validator's verdict
    (default: one `v` validator with the attempt's outcome)."""
    error = passed is None
    checks = checks if checks is not None else ({} if error else {"v": bool(passed)})
    verdicts = [
        Verdict(validator=name.split("#")[0], passed=ok, score=float(ok), reason="")
        for name, ok in checks.items()
    ]
    return AttemptRecord(
        key=f"{model}|{suite}/{task}/{case}|{variant}|r{repeat}",
        model=model,
        litellm_model=f"fake/{model}",
        suite=suite,
        task=task,
        case=case,
        variant=variant,
        paraphrase=paraphrase,
        noise_kind=noise[0],
        noise_level=noise[1],
        variant_version=1,
        repeat=repeat,
        seed=0,
        temperature=0.0,
        messages=[],
        output=None if error else "answer",
        verdicts=verdicts,
        passed=None if error else bool(passed),
        partial=None if error else (sum(checks.values()) / len(checks) if checks else 1.0),
        latency_s=None if error else latency,
        cost_usd=0.0 if error or cache_hit else cost,
        cost_saved_usd=saved,
        error="ServerError" if error else None,
        cache_hit=cache_hit,
        started_at=WHEN,
        finished_at=WHEN,
    )


def outcomes(model: str, results: str, **kwargs: object) -> list[AttemptRecord]:
    """One record per character: `1` pass, `0` fail, `x` infra error; case i gets `c{i}`."""
    table = {"1": True, "0": False, "x": None}
    return [
        record(model, f"c{i}", table[ch], **kwargs)  # type: ignore[arg-type]
        for i, ch in enumerate(results)
    ]


def repeated(model: str, table: list[str]) -> list:  # type: ignore[type-arg]
    """table[case] = outcomes of its repeats, e.g. ["110", "111"]."""
    return [
        record(model, f"c{i}", ch == "1", repeat=r)
        for i, row in enumerate(table)
        for r, ch in enumerate(row)
    ]


def exact_interval(passes: float, n: float) -> tuple[float, float]:
    """The 95% Clopper–Pearson interval written out from scipy's beta quantiles, independent of
    `rate_interval`'s code: low = Beta(x, n − x + 1).ppf(0.025), high = Beta(x + 1, n − x).ppf(0.975),
    with 0 and 1 at the edges."""
    low = 0.0 if passes <= 0 else float(stats.beta.ppf(0.025, passes, n - passes + 1))
    high = 1.0 if passes >= n else float(stats.beta.ppf(0.975, passes + 1, n - passes))
    return low, high
