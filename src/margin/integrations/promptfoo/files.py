"""Reading a promptfoo config's parts: `file://` references beside it, `$ref`s inside it,
prompts (text, chat, files), vars, and Nunjucks templates as margin's Jinja."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from margin.integrations.promptfoo.common import Loss, PromptfooError, short, slug, unique
from margin.suite.templates import TemplateProblem, render, template_variables

MAX_EXPANDED_CASES = 10_000
"""Array vars multiply a test's cases; more than this is a mistake, not a suite."""

_NUNJUCKS_ONLY = re.compile(r"{%-?\s*(include|import|from|extends)\b")


def file_ref(value: str, base: Path) -> Path | None:
    """The file a `file://` reference names (beside the config), or None if it is no reference."""
    if not isinstance(value, str) or not value.startswith("file://"):
        return None
    name = value.removeprefix("file://").split(":", 1)[0]
    path = (base / name).resolve()
    if not path.is_file():
        raise ValueError(f"{name} not found beside the config")
    return path


def resolve_refs(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
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
            return resolve_refs(target, root, depth + 1)
        return {k: resolve_refs(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_refs(v, root, depth + 1) for v in node]
    return node


def to_jinja(text: str) -> str:
    """A Nunjucks prompt as margin's (sandboxed Jinja) template; ValueError for what the
    sandbox cannot honour (other files, unknown names)."""
    found = _NUNJUCKS_ONLY.search(text)
    if found:
        raise ValueError(f"uses {{% {found[1]} %}}: margin's templates cannot read other files")
    converted = re.sub(r"\|\s*dump\b", "| tojson", text)
    try:
        template_variables(converted)
    except TemplateProblem as exc:
        raise ValueError(f"not a template margin can render: {exc}") from None
    return converted


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """An assertion value rendered with the test's vars, as promptfoo does (Nunjucks)."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return render(to_jinja(value), variables)
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    return value


# --- prompts ------------------------------------------------------------------------------


@dataclass
class Prompt:
    """A promptfoo prompt as a margin task's templates."""

    id: str
    text: str
    system: str | None = None


def read_prompts(raw_prompts: Any, base: Path, lost: list[Loss]) -> list[Prompt]:
    """promptfoo's `prompts` (one or a list) as templates with unique ids; each entry that does
    not convert is a loss."""
    prompts: list[Prompt] = []
    taken: set[str] = set()
    for index, raw in enumerate(raw_prompts if isinstance(raw_prompts, list) else [raw_prompts]):
        where = f"prompts[{index}]"
        try:
            for label, system, text in _prompt_texts(raw, base):
                pid = unique(slug(label or f"prompt-{len(prompts) + 1}", "prompt"), taken)
                prompts.append(Prompt(pid, to_jinja(text), to_jinja(system) if system else None))
        except (ValueError, OSError, yaml.YAMLError) as exc:
            lost.append(Loss(where, short(raw), str(exc)))
    return prompts


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
    ref = file_ref(raw, base)
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


# --- vars ---------------------------------------------------------------------------------


def load_vars(variables: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Vars with `file://` text files read in (promptfoo's file vars)."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        ref = file_ref(value, base) if isinstance(value, str) else None
        if ref is None:
            out[str(key)] = value
        elif ref.suffix.lower() in (".txt", ".md", ".json", ".yaml", ".yml", ".csv", ".html", ""):
            out[str(key)] = ref.read_text(encoding="utf-8")
        else:
            raise ValueError(f"var {key} is a {ref.suffix} file (code or binary), not text")
    return out


def expand(variables: dict[str, Any]) -> list[dict[str, Any]]:
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
