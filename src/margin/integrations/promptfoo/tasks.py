"""Groups of converted cases as margin tasks, and the gate limits their latency and cost checks
set."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from margin.integrations.promptfoo.cases import Group
from margin.integrations.promptfoo.common import Loss
from margin.suite.templates import template_variables


def build_tasks(
    groups: Mapping[tuple[str, ...], Group], changed: list[Loss]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One task per group (ids from its prompt's, numbered when a prompt has several), and the
    gate limits (None when no test had a latency or cost check)."""
    tasks: list[dict[str, Any]] = []
    per_prompt: dict[str, int] = {}
    for group in groups.values():
        per_prompt[group.prompt.id] = per_prompt.get(group.prompt.id, 0) + 1
    seen: dict[str, int] = {}
    costs: list[float] = []
    latencies: list[float] = []
    for group in groups.values():
        prompt = group.prompt
        seen[prompt.id] = seen.get(prompt.id, 0) + 1
        task_id = prompt.id if per_prompt[prompt.id] == 1 else f"{prompt.id}-{seen[prompt.id]}"
        tasks.append(_task(task_id, group, changed))
        if group.p95:
            latencies.append(min(group.p95))
        costs.extend(group.cost)
    return tasks, _gate(latencies, costs, changed)


def _task(task_id: str, group: Group, changed: list[Loss]) -> dict[str, Any]:
    prompt = group.prompt
    cases = [dict(case) for case in group.cases]
    validators = []
    for i, check in enumerate(group.checks):
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
    if group.p95:
        task["max_p95_s"] = min(group.p95)
        changed.append(
            Loss(
                f"task {task_id}",
                "latency",
                "each call's limit becomes the task's p95 latency limit"
                f" ({min(group.p95):g} s: a model above it is not recommended) and the"
                " gate's max_p95_s",
            )
        )
    task["cases"] = cases
    task["validators"] = validators
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
