"""promptfoo assertions as margin validators, with promptfoo's semantics: the phrase checks'
case sensitivity, equals and starts-with as promptfoo compares, the negations as regexes, JSON
(with a schema), model-graded rubrics as the judge, latency and cost as task and gate limits."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from margin.integrations.promptfoo.common import Loss
from margin.integrations.promptfoo.files import file_ref

PHRASES = {
    # promptfoo type: (margin validator, case sensitive)
    "contains": ("contains_all", True),
    "icontains": ("contains_all", False),
    "contains-all": ("contains_all", True),
    "icontains-all": ("contains_all", False),
    "contains-any": ("contains_any", True),
    "icontains-any": ("contains_any", False),
    "not-contains": ("must_not_contain", True),
    "not-icontains": ("must_not_contain", False),
    "not-contains-any": ("must_not_contain", True),
    "not-icontains-any": ("must_not_contain", False),
}
"""Substring checks. promptfoo's `contains` family is case-sensitive, the `i…` forms are not;
`-any` and `-all` take a list (or a comma-separated string)."""

UNSUPPORTED = {
    "javascript": "runs JavaScript: margin runs no code from a suite",
    "python": "runs Python code: margin runs no code from a suite",
    "ruby": "runs Ruby code: margin runs no code from a suite",
    "webhook": "calls a web hook: margin's checks make no network calls",
    "similar": "needs an embedding model (semantic similarity)",
    "rouge-n": "a similarity score with a threshold, not a pass/fail constraint margin has",
    "bleu": "a similarity score with a threshold, not a pass/fail constraint margin has",
    "gleu": "a similarity score with a threshold, not a pass/fail constraint margin has",
    "meteor": "a similarity score with a threshold, not a pass/fail constraint margin has",
    "levenshtein": "an edit-distance threshold margin has no validator for",
    "perplexity": "needs token log-probabilities",
    "perplexity-score": "needs token log-probabilities",
    "moderation": "needs a moderation API",
    "classifier": "needs a classifier model",
    "factuality": "a model-graded comparison margin's judge does not reproduce",
    "answer-relevance": "needs an embedding model",
    "context-faithfulness": "RAG context checks are not converted",
    "context-recall": "RAG context checks are not converted",
    "context-relevance": "RAG context checks are not converted",
    "select-best": "compares outputs across prompts, not one answer",
    "max-score": "compares outputs across prompts, not one answer",
    "is-valid-openai-tools-call": "checks tool calls: margin's tasks are text answers",
    "is-valid-openai-function-call": "checks tool calls: margin's tasks are text answers",
    "is-valid-function-call": "checks tool calls: margin's tasks are text answers",
    "tool-call-f1": "checks tool calls: margin's tasks are text answers",
    "trace-span-count": "checks traces, which margin does not record",
    "trace-span-duration": "checks traces, which margin does not record",
    "trace-error-spans": "checks traces, which margin does not record",
    "g-eval": "a scored model-graded metric; margin's judge answers pass or fail",
    "not-is-json": "margin has no 'is not JSON' validator",
    "not-contains-json": "margin has no 'contains no JSON' validator",
    "not-contains-all": "margin has no 'not every phrase' validator",
    "not-icontains-all": "margin has no 'not every phrase' validator",
    "finish-reason": "margin records the finish reason but has no validator on it",
    "guardrails": "needs a guardrail provider",
    "is-refusal": "a heuristic margin does not reproduce",
    "is-sql": "margin has no SQL validator",
    "is-xml": "margin has no XML validator",
    "contains-xml": "margin has no XML validator",
    "is-html": "margin has no HTML validator",
    "contains-html": "margin has no HTML validator",
    "word-count": "converts only as max_words; a minimum or exact count has no validator",
}

RUBRIC = "Grade the answer against the rubric. Rubric: {rubric}\n\nThe answer:\n{{{{ output }}}}"
CLOSED_QA = (
    "Does the answer meet this criterion? Criterion: {rubric}\n\nThe answer:\n{{{{ output }}}}"
)

_CSV_TYPE = re.compile(
    r"^(?P<type>[a-z][a-z0-9-]*)(?:\((?P<threshold>[\d.]+)\))?:(?P<value>.*)$", re.S
)
_KNOWN = {
    *PHRASES,
    *UNSUPPORTED,
    "equals",
    "not-equals",
    "starts-with",
    "not-starts-with",
    "regex",
    "not-regex",
    "is-json",
    "contains-json",
    "latency",
    "cost",
    "llm-rubric",
    "model-graded-closedqa",
}


def assertion_from_string(text: str) -> dict[str, Any]:
    """A CSV `__expected` cell as a promptfoo assertion: `type:value` for a known type (`fn:`
    and `grade:` are promptfoo's short names), `is-json` alone, else the whole cell `equals`."""
    if text in ("is-json", "contains-json", "not-is-json"):
        return {"type": text}
    found = _CSV_TYPE.match(text)
    if found:
        kind = {"fn": "javascript", "eval": "javascript", "grade": "llm-rubric"}.get(
            found["type"], found["type"]
        )
        if kind in _KNOWN:
            item: dict[str, Any] = {"type": kind, "value": found["value"].strip()}
            if found["threshold"]:
                item["threshold"] = float(found["threshold"])
            return item
    return {"type": "equals", "value": text}


@dataclass
class Check:
    """One assertion as margin takes it: the validator (with `{key}` where the case's value
    goes), the value for the case's `expect` (if any), and task-level limits."""

    kind: str
    """The grouping signature: tests whose checks share all kinds go in one task."""
    entry: dict[str, Any] | None = None
    expect: Any = None
    p95_s: float | None = None
    cost: float | None = None
    note: str | None = None


def convert_assertion(item: Mapping[str, Any], base: Path) -> Check:
    """One promptfoo assertion as a margin check; raises ValueError saying why it cannot."""
    kind = str(item.get("type", ""))
    if item.get("transform"):
        raise ValueError("transforms the output first (JavaScript): margin checks the answer as is")
    if kind in UNSUPPORTED:
        raise ValueError(UNSUPPORTED[kind])
    if kind in PHRASES:
        return _phrase_check(kind, item.get("value"))
    convert = _CONVERTERS.get(kind)
    if convert is None:
        raise ValueError(f"unknown assertion type {kind!r}")
    return convert(kind, item, base)


def flat_assertions(items: list[Any], where: str, lost: list[Loss]) -> list[dict[str, Any]]:
    """The test's assertions, an `assert-set` without a threshold flattened into them."""
    flat: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "assert-set":
            if item.get("threshold") is not None:
                lost.append(
                    Loss(
                        where,
                        "assert-set with a threshold",
                        "margin has no 'enough of these' validator",
                    )
                )
                continue
            flat.extend(a for a in item.get("assert") or [] if isinstance(a, dict))
        elif isinstance(item, dict):
            flat.append(item)
        else:
            lost.append(Loss(where, f"assert[{index}]", "not an assertion"))
    return flat


def _phrases(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _schema(value: Any, base: Path) -> dict[str, Any] | None:
    """A JSON Schema from an assertion value (a mapping, YAML text or a file beside it)."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        ref = file_ref(value, base)
        text = ref.read_text(encoding="utf-8") if ref is not None else value
        value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise ValueError("the schema is not a mapping")
    return value


def _phrase_check(kind: str, value: Any) -> Check:
    name, sensitive = PHRASES[kind]
    phrases = _phrases(value) if kind.endswith(("-any", "-all")) else [str(value)]
    if not phrases or value is None:
        raise ValueError("has no value to look for")
    entry = {name: {"from_expect": "{key}", "case_sensitive": sensitive}}
    return Check(f"{name}/{sensitive}", entry, phrases)


def _equals(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    value = item.get("value")
    if isinstance(value, dict | list):
        raise ValueError("compares with a JSON value: margin's equals compares text")
    entry = {"equals": {"from_expect": "{key}", "case_sensitive": True}}
    note = "compared with whitespace runs collapsed and the ends stripped (promptfoo: exact)"
    return Check("equals", entry, str(value), note=note)


def _starts_with(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    entry = {"starts_with": {"from_expect": "{key}", "case_sensitive": True}}
    note = "leading whitespace of the answer is ignored (promptfoo: not)"
    return Check("starts_with", entry, str(item.get("value")), note=note)


def _regex(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    """`not-equals`, `not-starts-with`, `regex` and `not-regex`, all as the regex validator."""
    text = str(item.get("value"))
    pattern = {"not-equals": re.escape(text), "not-starts-with": "^" + re.escape(text)}.get(
        kind, text
    )
    spec: dict[str, Any] = {"pattern": pattern, "match": not kind.startswith("not-")}
    if kind == "not-equals":
        spec["full"] = True
    re.compile(pattern)  # a JavaScript pattern Python cannot read is refused here
    return Check(f"regex/{kind}/{text}", {"regex": spec})


def _is_json(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    schema = _schema(item.get("value"), base)
    if schema is None:
        return Check("is-json", {"json": {"allow_fence": False}})
    key = json.dumps(schema, sort_keys=True)
    return Check(f"is-json/{key}", {"json_schema": {"definition": schema, "allow_fence": False}})


def _contains_json(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    schema = _schema(item.get("value"), base)
    spec = {} if schema is None else {"definition": schema}
    return Check(f"contains-json/{json.dumps(schema, sort_keys=True)}", {"contains_json": spec})


def _judge(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    """`llm-rubric` and `model-graded-closedqa`: the judge validator, graded by run.judge."""
    value = item.get("value")
    if not value:
        raise ValueError("has no rubric")
    if item.get("provider") or item.get("rubricPrompt"):
        note: str | None = "graded by run.judge.model, not the assertion's own provider or prompt"
    elif item.get("threshold") is not None:
        note = "margin's judge answers pass or fail; the score threshold is not used"
    else:
        note = None
    template = RUBRIC if kind == "llm-rubric" else CLOSED_QA
    rubric = template.format(rubric="{{ expect.{key} }}")
    return Check(kind, {"judge": {"rubric": rubric}}, str(value), note=note)


def _threshold(item: Mapping[str, Any]) -> float:
    threshold = item.get("threshold")
    if threshold is None:
        raise ValueError("has no threshold")
    return float(threshold)


def _latency(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    return Check("latency", p95_s=_threshold(item) / 1000)


def _cost(kind: str, item: Mapping[str, Any], base: Path) -> Check:
    return Check("cost", cost=_threshold(item))


_CONVERTERS: dict[str, Callable[[str, Mapping[str, Any], Path], Check]] = {
    "equals": _equals,
    "starts-with": _starts_with,
    "not-equals": _regex,
    "not-starts-with": _regex,
    "regex": _regex,
    "not-regex": _regex,
    "is-json": _is_json,
    "contains-json": _contains_json,
    "llm-rubric": _judge,
    "model-graded-closedqa": _judge,
    "latency": _latency,
    "cost": _cost,
}
"""The converter of each assertion type that is neither a phrase check nor unsupported."""
