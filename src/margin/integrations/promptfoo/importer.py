"""`import_config`: one promptfoo config file into a suite, a models config and gate limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from margin.integrations.promptfoo.cases import convert_tests, load_tests, read_default_test
from margin.integrations.promptfoo.common import DEFAULT_TARGET, Imported, Loss, PromptfooError
from margin.integrations.promptfoo.files import read_prompts, resolve_refs
from margin.integrations.promptfoo.providers import convert_providers
from margin.integrations.promptfoo.tasks import PromptsAs, build_tasks
from margin.suite.source import read_yaml


def import_config(
    path: Path, name: str, target: float = DEFAULT_TARGET, prompts_as: PromptsAs = "tasks"
) -> Imported:
    """Convert the promptfoo config at `path` into suite `name`: one task per prompt, or with
    `prompts_as="paraphrases"` one task whose other prompts are paraphrases of the first."""
    source = read_yaml(path, PromptfooError)
    data = source.data
    if not isinstance(data, dict):
        raise PromptfooError("not a promptfoo config (a mapping with prompts and tests)", path=path)
    base = path.parent
    lost: list[Loss] = []
    changed: list[Loss] = []
    data = resolve_refs(data, data)
    prompts = read_prompts(data.get("prompts") or ["{{ prompt }}"], base, lost)
    if not prompts:
        raise PromptfooError("no prompt converts (see the reasons above)", path=path)
    default = read_default_test(data.get("defaultTest") or {}, lost, changed)
    tests = load_tests(data.get("tests") or [], base, lost)
    if data.get("scenarios"):
        lost.append(
            Loss(
                "scenarios", f"{len(data['scenarios'])} scenario(s)", "scenarios are not converted"
            )
        )
    converted = convert_tests(tests, default, base, lost, changed)
    if not converted.cases:
        raise PromptfooError("no test converts (see the reasons listed)", path=path)
    tasks, gate = build_tasks(converted, prompts, prompts_as, changed)
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
