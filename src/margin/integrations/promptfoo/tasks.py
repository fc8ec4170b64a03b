"""Converted cases as margin tasks — one per prompt, or one with the other prompts as its
paraphrases — and the gate limits their latency and cost checks set."""

from __future__ import annotations

import copy
from typing import Any, Literal

from margin.integrations.promptfoo.cases import Converted
from margin.integrations.promptfoo.common import Loss, PromptfooError
from margin.integrations.promptfoo.files import Prompt
from margin.suite.templates import template_variables

PromptsAs = Literal["tasks", "paraphrases"]
"""How a config's prompts become tasks: one task each (every test a case of each), or one
task whose other prompts are paraphrases of the first."""


def build_tasks(
    converted: Converted, prompts: list[Prompt], prompts_as: PromptsAs, changed: list[Loss]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The tasks, every test a case of each, and the gate limits (None when no test had a
    latency or cost check)."""
    if prompts_as == "paraphrases":
        _check_paraphrases(prompts)
        tasks = [_task(prompts[0], [p.text for p in prompts[1:]], converted, changed)]
    else:
        tasks = [_task(prompt, [], converted, changed) for prompt in prompts]
    latencies = [min(converted.p95)] if converted.p95 else []
    return tasks, _gate(latencies, converted.cost, changed)


def _check_paraphrases(prompts: list[Prompt]) -> None:
    """Paraphrases share the first prompt's variables and system message, or the import stops."""
    first = template_variables(prompts[0].text)
    for prompt in prompts[1:]:
        used = template_variables(prompt.text)
        if used != first or prompt.system != prompts[0].system:
            what = "system message" if used == first else f"variables ({_names(used)})"
            raise PromptfooError(
                f"--prompts-as paraphrases: prompt {prompt.id!r} has other {what} than"
                f" {prompts[0].id!r} ({_names(first)}); use --prompts-as tasks"
            )


def _names(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _task(
    prompt: Prompt, paraphrases: list[str], converted: Converted, changed: list[Loss]
) -> dict[str, Any]:
    task_id = prompt.id
    cases = copy.deepcopy(converted.cases)  # each task its own copy: YAML writes no aliases
    task: dict[str, Any] = {"id": task_id}
    if prompt.system:
        task["system"] = prompt.system
    task["prompt"] = prompt.text
    if paraphrases:
        task["paraphrases"] = paraphrases
    templates = [prompt.text, prompt.system or "", *paraphrases]
    used = frozenset().union(*(template_variables(text) for text in templates))
    missing = sorted(name for name in used if any(name not in case["vars"] for case in cases))
    if missing:  # Nunjucks renders an undefined var as nothing; margin's templates refuse it
        task["vars"] = dict.fromkeys(missing, "")
        changed.append(
            Loss(
                f"task {task_id}",
                ", ".join(missing),
                "missing from some tests: rendered empty, as promptfoo's Nunjucks does",
            )
        )
    if converted.p95:
        task["max_p95_s"] = min(converted.p95)
        changed.append(
            Loss(
                f"task {task_id}",
                "latency",
                "each call's limit becomes the task's p95 latency limit"
                f" ({min(converted.p95):g} s: a model above it is not recommended) and the"
                " gate's max_p95_s",
            )
        )
    task["cases"] = cases
    if converted.shared:
        task["validators"] = copy.deepcopy(converted.shared)
    return task


def _gate(latencies: list[float], costs: list[float], changed: list[Loss]) -> dict[str, Any] | None:
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
    return gate or None
