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

from margin.suite.templates import TemplateProblem, render, template_variables
from margin.validators.base import CheckContext, JudgeTrace, Validator, Verdict

ANSWER_FORMAT = (
    "\n\nAnswer with one JSON object and nothing else, exactly of this form:\n"
    '{"verdict": "pass" or "fail", "score": a number from 0 to 1, "reason": "one short sentence"}'
)
"""Appended to every rubric: the structured answer margin parses."""

PAIR_FORMAT = (
    "\n\nAnswer with one JSON object and nothing else, exactly of this form:\n"
    '{"better": "first" or "second" or "tie", "reason": "one short sentence"}'
)
"""Appended to a pairwise rubric (one with a `reference`)."""

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class Judgement(BaseModel):
    """The judge's structured answer."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    verdict: Literal["pass", "fail"]
    score: float = Field(ge=0.0, le=1.0)
    reason: str


class PairJudgement(BaseModel):
    """The judge's structured answer to a pairwise rubric."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    better: Literal["first", "second", "tie"]
    reason: str


def _json_object(raw: str) -> object:
    text = raw.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_pair(raw: str) -> PairJudgement | None:
    """A pairwise answer if it is exactly one JSON object of the expected form; else None."""
    try:
        return PairJudgement.model_validate(_json_object(raw))
    except ValidationError:
        return None


def parse_judgement(raw: str) -> Judgement | None:
    """The judge's answer if it is exactly one JSON object of the expected form (a Markdown
    code fence around it is allowed); None otherwise — never a guess."""
    data = _json_object(raw)
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
    reference: str | None = None
    """Makes the rubric pairwise: a template for the answer to compare with (`{{ expect.title
    }}`). The rubric then sees `first` and `second` and is asked in both orders; an order
    disagreement is a tie. Passes when the output is at least as good (`pass_on: tie`) or
    better (`pass_on: better`)."""
    pass_on: Literal["tie", "better"] = "tie"
    """With `reference`: the least the output must get."""

    def check(self, output: str, ctx: CheckContext) -> Verdict:
        raise RuntimeError("a judge needs a model call: margin's runner decides it")

    def reads_expect(self) -> bool:
        """A pairwise judge reads a reference; a rubric may read `expect` itself."""
        if self.reference is not None:
            return True
        try:
            return "expect" in template_variables(self.rubric)
        except TemplateProblem:  # the loader refuses such a rubric; never call it a guard
            return True

    def is_usable(self, raw: str) -> bool:
        """Whether `raw` is a well-formed answer to this rubric (only such answers are cached)."""
        parsed = parse_pair(raw) if self.reference is not None else parse_judgement(raw)
        return parsed is not None

    def messages(
        self,
        output: str,
        prompt: str,
        variables: Mapping[str, Any],
        expect: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """The judge's user messages: one, or for a pairwise rubric two — the output first,
        then the reference first — each with the answer format added."""
        context = {**variables, "prompt": prompt, "output": output, "expect": dict(expect or {})}
        if self.reference is None:
            return [render(self.rubric, context) + ANSWER_FORMAT]
        reference = render(self.reference, context)
        return [
            render(self.rubric, {**context, "first": first, "second": second}) + PAIR_FORMAT
            for first, second in ((output, reference), (reference, output))
        ]


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


def combine_pairs(
    name: str, raws: Sequence[str | None], trace: JudgeTrace, pass_on: str = "tie"
) -> Verdict:
    """Pairwise answers, two per repeat (output first, then reference first): each repeat is
    +1 (the output better in both orders), −1 (worse in both), else 0 — a disagreement between
    the orders is a tie. The majority outcome decides; unscored when fewer than half the
    repeats have two usable answers or the outcomes tie."""
    outcomes = []
    for first, swapped in zip(raws[0::2], raws[1::2], strict=True):
        a = parse_pair(first) if first is not None else None
        b = parse_pair(swapped) if swapped is not None else None
        if a is None or b is None:
            continue
        mine = {"first": 1, "second": -1, "tie": 0}[a.better]
        theirs = {"first": -1, "second": 1, "tie": 0}[b.better]
        outcomes.append(mine if mine == theirs else 0)
    repeats = len(raws) // 2
    counts = {o: outcomes.count(o) for o in (1, 0, -1)}
    top = max(counts.values()) if outcomes else 0
    winners = [o for o, c in counts.items() if c == top]
    agreement = top / len(outcomes) if outcomes else None
    trace = trace.model_copy(update={"agreement": agreement})
    if 2 * len(outcomes) < repeats or not outcomes or len(winners) > 1:
        why = "the judge's comparisons tie" if outcomes else "no usable pair of judge answers"
        return Verdict(
            validator=name, passed=False, score=0.0, reason=why, unscored=True, judge=trace
        )
    outcome = winners[0]
    words = {1: "better than", 0: "as good as (or the orders disagree)", -1: "worse than"}
    passed = outcome == 1 or (outcome == 0 and pass_on == "tie")
    return Verdict(
        validator=name,
        passed=passed,
        score={1: 1.0, 0: 0.5, -1: 0.0}[outcome],
        reason=f"judged {words[outcome]} the reference in both orders"
        if outcome != 0
        else f"judged {words[0]} the reference",
        judge=trace,
    )
