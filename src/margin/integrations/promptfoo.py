"""Import a promptfoo config into a margin suite, a models config and gate limits.

promptfoo runs prompts × tests × providers once each; margin runs tasks × cases × models
repeatedly, under paraphrases and noise. The mapping:

- each prompt becomes a task per group of tests that check the same way (margin's validators
  belong to a task); each test becomes a case: its vars, and the values its assertions compare
  with in `expect` (rendered with the test's vars, as promptfoo renders them);
- assertions become validators with promptfoo's semantics (case sensitivity included; see
  `convert_assertion`); `latency` becomes the task's `max_p95_s` and the gate's, `cost` the
  gate's `max_cost_per_1k`;
- providers become models with litellm ids, keys as `${VAR}` references, never values.

What cannot convert is never dropped silently: every loss is a `Loss` (where, what, why), and
every conversion whose meaning shifts is listed too.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from margin.errors import UserError
from margin.suite.source import read_yaml
from margin.suite.templates import TemplateProblem

DEFAULT_TARGET = 0.9
MAX_EXPANDED_CASES = 10_000
"""Array vars multiply a test's cases; more than this is a mistake, not a suite."""


@dataclass(frozen=True)
class Loss:
    """Something of the promptfoo config that margin does not carry over (or carries over with
    a different meaning): where it was, what it was, and why."""

    where: str
    what: str
    why: str


@dataclass
class Imported:
    """The converted suite, models config and gate limits, and what did not convert."""

    suite: dict[str, Any]
    models: dict[str, Any] | None
    gate: dict[str, Any] | None
    lost: list[Loss]
    changed: list[Loss]
    tests: int
    cases: int


class PromptfooError(UserError):
    """A promptfoo config margin cannot read at all."""


# --- assertions ---------------------------------------------------------------------------

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
class _Check:
    """One assertion as margin takes it: the validator (with `{key}` where the case's value
    goes), the value for the case's `expect` (if any), and task-level limits."""

    kind: str
    """The grouping signature: tests whose checks share all kinds go in one task."""
    entry: dict[str, Any] | None = None
    expect: Any = None
    p95_s: float | None = None
    cost: float | None = None
    note: str | None = None


def _phrases(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _schema(value: Any, base: Path) -> dict[str, Any] | None:
    """A JSON Schema from an assertion value (a mapping, YAML text or a file beside it)."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        ref = _file_ref(value, base)
        text = ref.read_text(encoding="utf-8") if ref is not None else value
        value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise ValueError("the schema is not a mapping")
    return value


def convert_assertion(item: Mapping[str, Any], base: Path) -> _Check:
    """One promptfoo assertion as a margin check; raises ValueError saying why it cannot."""
    kind = str(item.get("type", ""))
    value = item.get("value")
    if item.get("transform"):
        raise ValueError("transforms the output first (JavaScript): margin checks the answer as is")
    if kind in UNSUPPORTED:
        raise ValueError(UNSUPPORTED[kind])
    if kind in PHRASES:
        name, sensitive = PHRASES[kind]
        phrases = _phrases(value) if kind.endswith(("-any", "-all")) else [str(value)]
        if not phrases or value is None:
            raise ValueError("has no value to look for")
        entry = {name: {"from_expect": "{key}", "case_sensitive": sensitive}}
        return _Check(f"{name}/{sensitive}", entry, phrases)
    if kind == "equals":
        if isinstance(value, dict | list):
            raise ValueError("compares with a JSON value: margin's equals compares text")
        entry = {"equals": {"from_expect": "{key}", "case_sensitive": True}}
        note: str | None = (
            "compared with whitespace runs collapsed and the ends stripped (promptfoo: exact)"
        )
        return _Check("equals", entry, str(value), note=note)
    if kind == "starts-with":
        entry = {"starts_with": {"from_expect": "{key}", "case_sensitive": True}}
        note = "leading whitespace of the answer is ignored (promptfoo: not)"
        return _Check("starts_with", entry, str(value), note=note)
    if kind in ("not-equals", "not-starts-with", "regex", "not-regex"):
        text = str(value)
        pattern = {"not-equals": re.escape(text), "not-starts-with": "^" + re.escape(text)}.get(
            kind, text
        )
        spec: dict[str, Any] = {"pattern": pattern, "match": not kind.startswith("not-")}
        if kind == "not-equals":
            spec["full"] = True
        re.compile(pattern)  # a JavaScript pattern Python cannot read is refused here
        return _Check(f"regex/{kind}/{text}", {"regex": spec})
    if kind == "is-json":
        schema = _schema(value, base)
        if schema is None:
            return _Check("is-json", {"json": {"allow_fence": False}})
        key = json.dumps(schema, sort_keys=True)
        return _Check(
            f"is-json/{key}", {"json_schema": {"definition": schema, "allow_fence": False}}
        )
    if kind == "contains-json":
        schema = _schema(value, base)
        spec = {} if schema is None else {"definition": schema}
        return _Check(
            f"contains-json/{json.dumps(schema, sort_keys=True)}", {"contains_json": spec}
        )
    if kind in ("llm-rubric", "model-graded-closedqa"):
        if not value:
            raise ValueError("has no rubric")
        if item.get("provider") or item.get("rubricPrompt"):
            note = "graded by run.judge.model, not the assertion's own provider or prompt"
        elif item.get("threshold") is not None:
            note = "margin's judge answers pass or fail; the score threshold is not used"
        else:
            note = None
        template = RUBRIC if kind == "llm-rubric" else CLOSED_QA
        rubric = template.format(rubric="{{ expect.{key} }}")
        return _Check(kind, {"judge": {"rubric": rubric}}, str(value), note=note)
    if kind == "latency":
        threshold = item.get("threshold")
        if threshold is None:
            raise ValueError("has no threshold")
        return _Check("latency", p95_s=float(threshold) / 1000)
    if kind == "cost":
        threshold = item.get("threshold")
        if threshold is None:
            raise ValueError("has no threshold")
        return _Check("cost", cost=float(threshold))
    raise ValueError(f"unknown assertion type {kind!r}")


# --- files, prompts, tests -----------------------------------------------------------------


def _file_ref(value: str, base: Path) -> Path | None:
    """The file a `file://` reference names (beside the config), or None if it is no reference."""
    if not isinstance(value, str) or not value.startswith("file://"):
        return None
    name = value.removeprefix("file://").split(":", 1)[0]
    path = (base / name).resolve()
    if not path.is_file():
        raise ValueError(f"{name} not found beside the config")
    return path


_NUNJUCKS_ONLY = re.compile(r"{%-?\s*(include|import|from|extends)\b")


def to_jinja(text: str) -> str:
    """A Nunjucks prompt as margin's (sandboxed Jinja) template; ValueError for what the
    sandbox cannot honour (other files, unknown names)."""
    from margin.suite.templates import template_variables

    found = _NUNJUCKS_ONLY.search(text)
    if found:
        raise ValueError(f"uses {{% {found[1]} %}}: margin's templates cannot read other files")
    converted = re.sub(r"\|\s*dump\b", "| tojson", text)
    try:
        template_variables(converted)
    except TemplateProblem as exc:
        raise ValueError(f"not a template margin can render: {exc}") from None
    return converted


@dataclass
class _Prompt:
    id: str
    text: str
    system: str | None = None


def _chat(value: Any) -> tuple[str | None, str]:
    """(system, user) of a chat-format prompt: at most one system message, then one user."""
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ValueError("not a list of chat messages")
    roles = [m.get("role") for m in value]
    if roles not in (["user"], ["system", "user"]):
        raise ValueError(f"chat roles {roles}: margin's task is one system and one user message")
    system = str(value[0]["content"]) if roles[0] == "system" else None
    return system, str(value[-1]["content"])


def _prompt_texts(raw: Any, base: Path) -> list[tuple[str | None, str | None, str]]:
    """(label, system, text) for one `prompts` entry."""
    if isinstance(raw, dict):
        label = raw.get("label") or raw.get("id")
        inner = raw.get("raw", raw.get("id"))
        return [(str(label) if label else None, s, t) for _, s, t in _prompt_texts(inner, base)]
    if not isinstance(raw, str):
        raise ValueError("not a prompt string")
    ref = _file_ref(raw, base)
    if ref is None:
        stripped = raw.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                system, user = _chat(json.loads(stripped))
            except json.JSONDecodeError:
                return [(None, None, raw)]
            return [(None, system, user)]
        return [(None, None, raw)]
    suffix = ref.suffix.lower()
    text = ref.read_text(encoding="utf-8")
    if suffix in (".json", ".yaml", ".yml"):
        system, user = _chat(yaml.safe_load(text))
        return [(ref.stem, system, user)]
    if suffix in (".txt", ".md", ".j2", ".njk", ".nunjucks", ""):
        parts = [p.strip() for p in re.split(r"^---\s*$", text, flags=re.M) if p.strip()]
        return [
            (ref.stem if len(parts) == 1 else f"{ref.stem}-{i + 1}", None, p)
            for i, p in enumerate(parts)
        ]
    raise ValueError(f"a {suffix} prompt file is code (a prompt function), not a template")


def slug(text: str, fallback: str) -> str:
    """`text` as a margin id (letters, digits, `_ . -`, lower case), else `fallback`."""
    found = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip()).strip("-._").lower()[:60]
    return found if found and found[0].isalnum() else fallback


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate = f"{name}-{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _load_tests(raw: Any, base: Path, lost: list[Loss]) -> list[dict[str, Any]]:
    """promptfoo's `tests`: a list (of tests or file references) or one file reference."""
    items = raw if isinstance(raw, list) else [raw]
    tests: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            tests.append(item)
            continue
        where = f"tests[{index}]" if isinstance(raw, list) else "tests"
        if not isinstance(item, str) or not item.startswith("file://"):
            lost.append(Loss(where, _short(item), "not a test or a file:// reference"))
            continue
        if any(ch in item for ch in "*?["):
            lost.append(Loss(where, item, "glob patterns are not expanded: list the files"))
            continue
        try:
            path = _file_ref(item, base)
        except ValueError as exc:
            lost.append(Loss(where, item, str(exc)))
            continue
        assert path is not None
        suffix = path.suffix.lower()
        if suffix == ".csv":
            tests.extend(_csv_tests(path, lost))
        elif suffix in (".yaml", ".yml", ".json"):
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            tests.extend(
                t for t in (loaded if isinstance(loaded, list) else [loaded]) if isinstance(t, dict)
            )
        elif suffix == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            tests.extend(json.loads(line) for line in lines if line.strip())
        else:
            lost.append(Loss(where, item, f"a {suffix} test file is code (a generator), not data"))
    return tests


def _csv_tests(path: Path, lost: list[Loss]) -> list[dict[str, Any]]:
    """Tests from a CSV: columns are vars, `__expected…` cells assertions, `__description`."""
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    tests = []
    skipped: set[str] = set()
    for row in reader:
        test: dict[str, Any] = {"vars": {}, "assert": []}
        for column, cell in row.items():
            if column is None or cell is None:
                continue
            if column.startswith("__expected"):
                if cell.strip():
                    test["assert"].append(assertion_from_string(cell.strip()))
            elif column == "__description":
                test["description"] = cell
            elif column.startswith("__metadata"):
                continue
            elif column.startswith("__"):
                skipped.add(column)
            else:
                test["vars"][column] = cell
        tests.append(test)
    for column in sorted(skipped):
        lost.append(
            Loss(path.name, f"column {column}", "a promptfoo option column margin does not use")
        )
    return tests


def _expand(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo runs a test once per combination of its array vars."""
    keys = [k for k, v in variables.items() if isinstance(v, list)]
    if not keys:
        return [variables]
    combos = list(
        itertools.islice(itertools.product(*(variables[k] for k in keys)), MAX_EXPANDED_CASES + 1)
    )
    if len(combos) > MAX_EXPANDED_CASES:
        raise ValueError(f"array vars expand to more than {MAX_EXPANDED_CASES:,} cases")
    return [{**variables, **dict(zip(keys, combo, strict=True))} for combo in combos]


def _load_vars(variables: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Vars with `file://` text files read in (promptfoo's file vars)."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        ref = _file_ref(value, base) if isinstance(value, str) else None
        if ref is None:
            out[str(key)] = value
        elif ref.suffix.lower() in (".txt", ".md", ".json", ".yaml", ".yml", ".csv", ".html", ""):
            out[str(key)] = ref.read_text(encoding="utf-8")
        else:
            raise ValueError(f"var {key} is a {ref.suffix} file (code or binary), not text")
    return out


def _render(value: Any, variables: Mapping[str, Any]) -> Any:
    """An assertion value rendered with the test's vars, as promptfoo does (Nunjucks)."""
    from margin.suite.templates import render

    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return render(to_jinja(value), variables)
    if isinstance(value, list):
        return [_render(v, variables) for v in value]
    return value


# --- providers ----------------------------------------------------------------------------

PROVIDERS: dict[str, tuple[str, str | None]] = {
    # promptfoo prefix: (litellm prefix, the key's usual environment variable)
    "openai:chat": ("openai", "OPENAI_API_KEY"),
    "openai:responses": ("openai", "OPENAI_API_KEY"),
    "openai:completion": ("text-completion-openai", "OPENAI_API_KEY"),
    "openai": ("openai", "OPENAI_API_KEY"),
    "anthropic:messages": ("anthropic", "ANTHROPIC_API_KEY"),
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY"),
    "ollama:chat": ("ollama_chat", None),
    "ollama:completion": ("ollama", None),
    "ollama": ("ollama", None),
    "azure:chat": ("azure", "AZURE_API_KEY"),
    "azureopenai:chat": ("azure", "AZURE_API_KEY"),
    "azure": ("azure", "AZURE_API_KEY"),
    "vertex": ("vertex_ai", None),
    "google": ("gemini", "GEMINI_API_KEY"),
    "gemini": ("gemini", "GEMINI_API_KEY"),
    "bedrock": ("bedrock", None),
    "mistral": ("mistral", "MISTRAL_API_KEY"),
    "groq": ("groq", "GROQ_API_KEY"),
    "openrouter": ("openrouter", "OPENROUTER_API_KEY"),
    "togetherai": ("together_ai", "TOGETHERAI_API_KEY"),
    "fireworks": ("fireworks_ai", "FIREWORKS_API_KEY"),
    "deepseek": ("deepseek", "DEEPSEEK_API_KEY"),
    "xai": ("xai", "XAI_API_KEY"),
    "perplexity": ("perplexity", "PERPLEXITYAI_API_KEY"),
    "cohere": ("cohere", "COHERE_API_KEY"),
    "vllm": ("hosted_vllm", None),
    "huggingface:text-generation": ("huggingface", "HF_TOKEN"),
}


def litellm_id(provider: str) -> tuple[str, str | None]:
    """promptfoo's provider id as litellm's model id and the key's environment variable."""
    for prefix in sorted(PROVIDERS, key=len, reverse=True):
        if provider.startswith(prefix + ":"):
            name = provider[len(prefix) + 1 :]
            if not name:
                break
            target, key = PROVIDERS[prefix]
            return f"{target}/{name}", key
    raise ValueError(
        "not a provider litellm serves (custom providers, scripts and HTTP "
        "endpoints are not converted)"
    )


def convert_providers(raw: Any, lost: list[Loss], changed: list[Loss]) -> list[dict[str, Any]]:
    items = raw if isinstance(raw, list) else [raw] if raw else []
    models: list[dict[str, Any]] = []
    taken: set[str] = set()
    for index, item in enumerate(items):
        where = f"providers[{index}]"
        spec: dict[str, Any] = (
            {"id": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else {}
        )
        provider = str(spec.get("id", ""))
        try:
            model, key = litellm_id(provider)
        except ValueError as exc:
            lost.append(Loss(where, provider or _short(item), str(exc)))
            continue
        config = spec.get("config") or {}
        base = config.get("apiBaseUrl") or config.get("apiHost") or config.get("baseUrl")
        label = str(spec.get("label") or model.split("/", 1)[1])
        entry: dict[str, Any] = {
            "name": _unique(slug(label, f"model-{index + 1}"), taken),
            "model": model,
        }
        if base:
            base = str(base)
            entry["api_base"] = base if base.startswith("http") else f"https://{base}"
        if config.get("apiKeyEnvar"):
            entry["api_key"] = "${" + str(config["apiKeyEnvar"]) + "}"
        elif key is not None:
            entry["api_key"] = "${" + key + "}"
        if config.get("apiKey"):
            changed.append(
                Loss(
                    where,
                    "apiKey",
                    "a key written in the config is never copied: "
                    "the model reads " + entry.get("api_key", "its provider's variable"),
                )
            )
        sampling = {k: config[k] for k in ("temperature", "top_p", "max_tokens") if k in config}
        if sampling:
            entry["sampling"] = sampling
        models.append(entry)
    return models


# --- the config ---------------------------------------------------------------------------


def import_config(path: Path, name: str, target: float = DEFAULT_TARGET) -> Imported:
    """Convert the promptfoo config at `path` into suite `name`."""
    source = read_yaml(path, PromptfooError)
    data = source.data
    if not isinstance(data, dict):
        raise PromptfooError("not a promptfoo config (a mapping with prompts and tests)", path=path)
    base = path.parent
    lost: list[Loss] = []
    changed: list[Loss] = []
    data = _resolve_refs(data, data)

    prompts: list[_Prompt] = []
    taken_prompts: set[str] = set()
    raw_prompts = data.get("prompts") or ["{{ prompt }}"]
    for index, raw in enumerate(raw_prompts if isinstance(raw_prompts, list) else [raw_prompts]):
        where = f"prompts[{index}]"
        try:
            for label, system, text in _prompt_texts(raw, base):
                pid = _unique(slug(label or f"prompt-{len(prompts) + 1}", "prompt"), taken_prompts)
                prompts.append(_Prompt(pid, to_jinja(text), to_jinja(system) if system else None))
        except (ValueError, OSError, yaml.YAMLError) as exc:
            lost.append(Loss(where, _short(raw), str(exc)))
    if not prompts:
        raise PromptfooError("no prompt converts (see the reasons above)", path=path)

    default = data.get("defaultTest") or {}
    if isinstance(default, str):
        lost.append(Loss("defaultTest", default, "a file:// defaultTest is not read"))
        default = {}
    default_vars = dict(default.get("vars") or {})
    default_asserts = list(default.get("assert") or [])
    if (default.get("options") or {}).get("provider"):
        changed.append(
            Loss(
                "defaultTest.options.provider",
                _short(default["options"]["provider"]),
                "model-graded checks use run.judge.model (set it in the models config)",
            )
        )

    tests = _load_tests(data.get("tests") or [], base, lost)
    if data.get("scenarios"):
        lost.append(
            Loss(
                "scenarios", f"{len(data['scenarios'])} scenario(s)", "scenarios are not converted"
            )
        )

    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    case_ids: set[str] = set()
    for index, test in enumerate(tests):
        where = f"tests[{index}]" + (f" ({test['description']})" if test.get("description") else "")
        _test_notes(test, where, lost, changed)
        checks: list[_Check] = []
        flat = _flat_assertions([*default_asserts, *(test.get("assert") or [])], where, lost)
        try:
            variables = _load_vars({**default_vars, **(test.get("vars") or {})}, base)
            expanded = _expand(variables)
        except (ValueError, OSError) as exc:
            lost.append(Loss(where, "vars", f"{exc}: the test is not imported"))
            continue
        for item in flat:
            kind = str(item.get("type", "?"))
            try:
                check = convert_assertion(item, base)
            except (ValueError, OSError, re.error, yaml.YAMLError) as exc:
                lost.append(Loss(where, kind, str(exc)))
                continue
            if check.note:
                changed.append(Loss(where, kind, check.note))
            checks.append(check)
        validating = [c for c in checks if c.entry is not None]
        if not validating:
            lost.append(
                Loss(
                    where,
                    "the test",
                    "no assertion converts to a validator: a margin case "
                    "needs at least one check, so the test is not imported",
                )
            )
            continue
        stem = slug(str(test.get("description") or ""), f"test-{index + 1}")
        for number, combo in enumerate(expanded):
            try:
                values = [_render(c.expect, combo) for c in validating]
            except (TemplateProblem, ValueError) as exc:  # the case cannot be checked
                lost.append(Loss(where, "assertion value", f"does not render with the vars: {exc}"))
                continue
            case_id = _unique(stem if len(expanded) == 1 else f"{stem}-{number + 1}", case_ids)
            case: dict[str, Any] = {"id": case_id, "vars": combo}
            expect = {
                f"v{i + 1}": value
                for i, (check, value) in enumerate(zip(validating, values, strict=True))
                if check.expect is not None
            }
            if expect:
                case["expect"] = expect
            for prompt in prompts:
                signature = (prompt.id, *(c.kind for c in validating))
                group = groups.setdefault(
                    signature,
                    {"prompt": prompt, "checks": validating, "cases": [], "p95": [], "cost": []},
                )
                group["cases"].append(case)
                group["p95"].extend(c.p95_s for c in checks if c.p95_s is not None)
                group["cost"].extend(c.cost for c in checks if c.cost is not None)
    if not groups:
        raise PromptfooError("no test converts (see the reasons listed)", path=path)

    tasks, gate = _tasks(groups, changed)
    suite: dict[str, Any] = {"suite": name}
    if data.get("description"):
        suite["description"] = str(data["description"])
    suite["target"] = target
    suite["tasks"] = tasks
    models = convert_providers(data.get("providers"), lost, changed)
    return Imported(
        suite=suite,
        models={"models": models} if models else None,
        gate=gate,
        lost=lost,
        changed=changed,
        tests=len(tests),
        cases=sum(len(t["cases"]) for t in tasks),
    )


def _test_notes(test: Mapping[str, Any], where: str, lost: list[Loss], changed: list[Loss]) -> None:
    """What a test carries beside its assertions that margin drops or reads differently."""
    options = test.get("options") or {}
    for option in ("transform", "postprocess"):
        if options.get(option):
            lost.append(
                Loss(
                    where,
                    f"options.{option}",
                    "transforms the output (JavaScript): "
                    "the checks see the answer as the model gave it",
                )
            )
    if test.get("threshold") is not None:
        changed.append(
            Loss(
                where,
                f"threshold {test['threshold']}",
                "promptfoo passes the test when the weighted assertion score reaches "
                "it; margin passes an attempt when every validator passes (partial "
                "credit is reported beside it)",
            )
        )
    if test.get("providers"):
        changed.append(Loss(where, "providers", "runs on every model of the config"))


def _flat_assertions(items: list[Any], where: str, lost: list[Loss]) -> list[dict[str, Any]]:
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


def _tasks(
    groups: Mapping[tuple[str, ...], dict[str, Any]], changed: list[Loss]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    from margin.suite.templates import template_variables

    tasks: list[dict[str, Any]] = []
    per_prompt: dict[str, int] = {}
    for group in groups.values():
        per_prompt[group["prompt"].id] = per_prompt.get(group["prompt"].id, 0) + 1
    seen: dict[str, int] = {}
    costs: list[float] = []
    latencies: list[float] = []
    for group in groups.values():
        prompt: _Prompt = group["prompt"]
        seen[prompt.id] = seen.get(prompt.id, 0) + 1
        task_id = prompt.id if per_prompt[prompt.id] == 1 else f"{prompt.id}-{seen[prompt.id]}"
        cases = [dict(case) for case in group["cases"]]
        validators = []
        for i, check in enumerate(group["checks"]):
            text = json.dumps(check.entry).replace("{key}", f"v{i + 1}")
            validators.append(json.loads(text))
        task: dict[str, Any] = {"id": task_id}
        if prompt.system:
            task["system"] = prompt.system
        task["prompt"] = prompt.text
        missing = sorted(
            name
            for name in template_variables(prompt.text) | template_variables(prompt.system or "")
            if any(name not in case["vars"] for case in cases)
        )
        if missing:  # Nunjucks renders an undefined var as nothing; margin's templates refuse it
            task["vars"] = dict.fromkeys(missing, "")
            changed.append(
                Loss(
                    f"task {task_id}",
                    ", ".join(missing),
                    "missing from some tests: rendered empty, as promptfoo's Nunjucks does",
                )
            )
        if group["p95"]:
            task["max_p95_s"] = min(group["p95"])
            latencies.append(min(group["p95"]))
            changed.append(
                Loss(
                    f"task {task_id}",
                    "latency",
                    "each call's limit becomes the task's p95 latency limit"
                    f" ({min(group['p95']):g} s: a model above it is not recommended) and the"
                    " gate's max_p95_s",
                )
            )
        costs.extend(group["cost"])
        task["cases"] = cases
        task["validators"] = validators
        tasks.append(task)
    gate: dict[str, Any] = {}
    if latencies:
        gate["max_p95_s"] = min(latencies)
    if costs:
        gate["max_cost_per_1k"] = min(costs) * 1000
        changed.append(
            Loss(
                "cost",
                f"threshold ${min(costs):g} per call",
                "becomes the gate's "
                f"max_cost_per_1k (${min(costs) * 1000:g} per 1,000 tasks, the mean)",
            )
        )
    return tasks, gate or None


def _resolve_refs(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """`$ref: '#/path/in/config'` replaced by what it points at (promptfoo's templates)."""
    if depth > 20:
        raise PromptfooError("$ref nesting deeper than 20")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            if target is None:
                raise PromptfooError(f"$ref {ref} points at nothing")
            return _resolve_refs(target, root, depth + 1)
        return {k: _resolve_refs(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_refs(v, root, depth + 1) for v in node]
    return node


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (prompts, rubrics) as literal blocks, as a person writes them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def header(config: Path, result: Imported) -> list[str]:
    """The comment a converted file starts with: its source, and what did not convert."""
    lines = [f"Imported from {config} by `margin import promptfoo`."]
    if result.lost:
        lines.append(f"Not converted ({len(result.lost)}):")
        lines.extend(f"  - {loss.where}: {loss.what} — {loss.why}" for loss in result.lost)
    if result.changed:
        lines.append(f"Converted with a shifted meaning ({len(result.changed)}):")
        lines.extend(f"  - {c.where}: {c.what} — {c.why}" for c in result.changed)
    return lines


def dump_yaml(data: Mapping[str, Any], lines: Iterable[str]) -> str:
    """YAML with a comment header, keys in the order given."""
    comment = "".join(f"# {line}\n" for line in lines)
    text = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return comment + text
