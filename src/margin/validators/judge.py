"""The `judge` validator: a rubric graded by a model, whose own reliability is measured.

A judge is a validator like any other, except that deciding it takes a model call: margin's
runner makes that call through the same gateway as the model's (retries, cache, budget,
journal). The rubric is a template over the case's variables, `prompt` (the user message the
model saw) and `output` (its answer); margin appends the answer format. The judge answers one
JSON object, parsed strictly; anything else — or a failed call — leaves the verdict *unscored*:
excluded from pass rates and counted, like an infra error, never a pass and never a fail.
With `repeats: n` the judge is asked n times and the majority decides; a tie is unscored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from margin.validators.base import CheckContext, JudgeTrace, Validator, Verdict

ANSWER_FORMAT = (
    "\n\nAnswer with one JSON object and nothing else, exactly of this form:\n"
    '{"verdict": "pass" or "fail", "score": a number from 0 to 1, "reason": "one short sentence"}'
)
"""Appended to every rubric: the structured answer margin parses."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class Judgement(BaseModel):
    """The judge's structured answer."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    verdict: Literal["pass", "fail"]
    score: float = Field(ge=0.0, le=1.0)
    reason: str


def parse_judgement(raw: str) -> Judgement | None:
    """The judge's answer if it is exactly one JSON object of the expected form (a Markdown
    code fence around it is allowed); None otherwise — never a guess."""
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("score"), int):
        data["score"] = float(data["score"])  # 1 is a number from 0 to 1
    try:
        return Judgement.model_validate(data)
    except ValidationError:
        return None


class JudgeValidator(Validator):
    """`judge: {rubric: "Does the title keep the core request? {{ output }}", model: NAME}`."""

    name: ClassVar[str] = "judge"
    short: ClassVar[str | None] = "rubric"
    needs_model: ClassVar[bool] = True

    rubric: str = Field(min_length=1)
    """The question to the judge: a template over the case's vars, `prompt` and `output`."""
    model: str | None = None
    """The judge: a model name from the models config (default: the run's `judge.model`)."""
    repeats: int | None = Field(default=None, ge=1, le=25)
    """Ask the judge this many times; the majority decides (default: `judge.repeats`)."""
    max_tokens: int = Field(default=200, ge=16, le=4096)
    """Cap on the judge's answer."""
    labels: str | None = None
    """Human-labelled examples for `margin judge-check` (a path relative to the suite file)."""

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        raise RuntimeError("a judge needs a model call: margin's runner decides it")

    def messages(self, output: str, prompt: str, variables: Mapping[str, Any]) -> list[str]:
        """The judge's user message (one), the rubric rendered and the answer format added."""
        from margin.templates import render

        text = render(self.rubric, {**variables, "prompt": prompt, "output": output})
        return [text + ANSWER_FORMAT]


def combine(name: str, raws: Sequence[str | None], trace: JudgeTrace) -> Verdict:
    """The majority of the parsed answers (None: the call failed). Unscored when fewer than
    half the answers parse or the parsed verdicts tie."""
    parsed = [parse_judgement(raw) for raw in raws if raw is not None]
    valid = [p for p in parsed if p is not None]
    passes = sum(p.verdict == "pass" for p in valid)
    fails = len(valid) - passes
    agreement = max(passes, fails) / len(valid) if valid else None
    trace = trace.model_copy(update={"agreement": agreement})
    if 2 * len(valid) < len(raws) or passes == fails:
        why = (
            "the judge's answers tie"
            if valid and passes == fails
            else f"{len(raws) - len(valid)} of {len(raws)} judge answers unusable"
        )
        return Verdict(
            validator=name, passed=False, score=0.0, reason=why, unscored=True, judge=trace
        )
    won = passes > fails
    chosen = [p for p in valid if (p.verdict == "pass") == won]
    score = sum(p.score for p in valid) / len(valid)
    return Verdict(
        validator=name, passed=won, score=score, reason=chosen[0].reason[:500], judge=trace
    )
