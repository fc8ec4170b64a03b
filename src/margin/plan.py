"""Expand suites × models into attempts (pure, deterministic, seeded) and estimate their cost.

An attempt is keyed by (model, suite, task, case, variant, repeat). A variant is one concrete
prompt: (paraphrase, noise kind, level, generator version); the clean prompt is `p0`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from margin.config import ModelSpec, RunSettings
from margin.errors import UserError
from margin.perturb import VERSIONS, NoiseContext, apply_noise, facts_in
from margin.providers.prices import price_for
from margin.suite.tasks import PERTURB_KINDS, Case, Suite, Task
from margin.suite.templates import render

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, order=True)
class Variant:
    """One concrete wording: a paraphrase (0 = the prompt) under noise of a kind and level."""

    paraphrase: int = 0
    kind: str = "clean"
    level: float = 0.0
    version: int = 1
    """Generator version: a changed generator bumps it, so caches and baselines stay honest."""

    @property
    def id(self) -> str:
        """`p0`, `p2`, `p0~typos@0.05v1` — stable across runs."""
        base = f"p{self.paraphrase}"
        return base if self.kind == "clean" else f"{base}~{self.kind}@{self.level:g}v{self.version}"

    @property
    def axis(self) -> str:
        """The variant without its level (`p0~typos v1`): levels of one axis share a noise seed,
        so a higher level adds noise on top of exactly the lower level's noise."""
        return (
            f"p{self.paraphrase}"
            if self.kind == "clean"
            else f"p{self.paraphrase}~{self.kind}v{self.version}"
        )


@dataclass(frozen=True, order=True)
class AttemptKey:
    """The identity of one attempt; the journal holds each key once."""

    model: str
    suite: str
    task: str
    case: str
    variant: str
    repeat: int
    policy: str = ""
    """The delivery policy this attempt is a step of ("" for a bare model's attempt); `repeat`
    is then the policy execution's index."""
    step: int = 0
    """0-based step within that policy execution."""

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The key as the journal writes it (built once: the runner asks for it often)."""
        base = f"{self.model}|{self.suite}/{self.task}/{self.case}|{self.variant}|r{self.repeat}"
        return f"{base}|{self.policy}#s{self.step}" if self.policy else base


@dataclass(frozen=True)
class Message:
    """One chat message as sent to the model."""

    role: str
    content: str


@dataclass(frozen=True, eq=False)
class Attempt:
    """One planned model call with everything needed to make and judge it."""

    key: AttemptKey
    model: ModelSpec
    suite: Suite
    task: Task
    case: Case
    variant: Variant
    messages: tuple[Message, ...]
    seed: int
    max_tokens: int
    noise_seed: int = 0
    """Seed of the variant's noise: the same for every model and repeat of this case."""
    judges: tuple[ModelSpec, ...] = ()
    """The models the task's `judge` validators call (empty when it has none)."""


@dataclass(frozen=True)
class Plan:
    """Every attempt of a run, in a deterministic order."""

    attempts: tuple[Attempt, ...]
    settings: RunSettings
    models: tuple[ModelSpec, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.attempts)


def derive_seed(base: int, key: AttemptKey) -> int:
    """A 31-bit seed from the run's seed and the attempt's key (stable across runs)."""
    digest = hashlib.sha256(f"{base}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def noise_levels(task: Task, settings: RunSettings) -> dict[str, list[float]]:
    """Levels per noise kind: the run's defaults, overridden kind by kind by the task's."""
    levels = dict(settings.levels)
    if task.perturb is not None:
        levels.update(task.perturb.model_dump(exclude_none=True))
    return levels


def variants(task: Task, settings: RunSettings) -> list[Variant]:
    """The task's variants: the clean prompt, each authored paraphrase, then each noise level.

    Noise is applied to the clean prompt (p0) only, so a noise axis compares with one baseline.
    """
    found = [Variant(0)]
    if settings.paraphrases:
        found += [Variant(i) for i in range(1, len(task.paraphrases) + 1)]
    if settings.noise:
        levels = noise_levels(task, settings)
        for kind in PERTURB_KINDS:
            for level in sorted(set(levels.get(kind, []))):
                if level > 0:
                    found.append(Variant(0, kind, level, VERSIONS[kind]))
    return found


def noise_seed(base: int, suite: str, task: str, case: str, variant: Variant) -> int:
    """The noise seed of a case on a variant's axis: independent of model, repeat and level, so
    every model sees exactly the same noisy prompt (paired comparison) and levels nest."""
    digest = hashlib.sha256(f"{base}:noise:{suite}/{task}/{case}|{variant.axis}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def render_messages(task: Task, case: Case, variant: Variant, seed: int = 0) -> tuple[Message, ...]:
    """The chat messages for `case` under `variant` (noise on the user message, with `seed`)."""
    variables = task.case_vars(case)
    template = task.prompt if variant.paraphrase == 0 else task.paraphrases[variant.paraphrase - 1]
    messages = []
    if task.system is not None:
        messages.append(Message("system", render(task.system, variables)))
    user = render(template, variables)
    if variant.kind != "clean":
        context = NoiseContext(facts=tuple(facts_in(case.expect)), validators=task.checks_for(case))
        user = apply_noise(user, variant.kind, variant.level, seed, context)
    messages.append(Message("user", user))
    return tuple(messages)


def build_plan(
    suites: Iterable[Suite],
    models: Iterable[ModelSpec],
    settings: RunSettings,
    judges: Iterable[ModelSpec] = (),
) -> Plan:
    """Every attempt: models × suites × tasks × cases × variants × repeats. `judges`: models a
    `judge` validator may name besides `models` (the whole models config)."""
    models = tuple(models)
    suites = tuple(suites)
    named = {m.name: m for m in (*judges, *models)}
    task_judges = {
        (suite.suite, task.id): task_judge_models(suite, task, settings, named)
        for suite in suites
        for task in suite.tasks
    }
    return Plan(tuple(_attempts(suites, models, settings, task_judges)), settings, models)


def task_judge_models(
    suite: Suite, task: Task, settings: RunSettings, named: dict[str, ModelSpec]
) -> tuple[ModelSpec, ...]:
    """The models `task`'s judge validators call; a judge naming a model the config does not
    have is a UserError. A judge with no model at all (none on it, no run.judge.model) is
    skipped by the runner and flagged in the report."""
    found: dict[str, ModelSpec] = {}
    for check in task.all_checks():  # a case's own judge calls its model too
        if not check.needs_model:
            continue
        name = getattr(check, "model", None) or settings.judge.model
        where = f"suite {suite.suite!r}, task {task.id!r}: the judge validator"
        if name is None:
            continue
        if name not in named:
            known = ", ".join(sorted(named))
            raise UserError(f"{where} names model {name!r}, not in the models config ({known})")
        found[name] = named[name]
    return tuple(found.values())


def _attempts(
    suites: tuple[Suite, ...],
    models: tuple[ModelSpec, ...],
    settings: RunSettings,
    task_judges: dict[tuple[str, str], tuple[ModelSpec, ...]],
) -> Iterator[Attempt]:
    for model in models:
        for suite in suites:
            for task in suite.tasks:
                judges = task_judges[(suite.suite, task.id)]
                cap = min(task.max_tokens or model.sampling.max_tokens, model.sampling.max_tokens)
                for case in task.cases:
                    for variant in variants(task, settings):
                        seed = noise_seed(settings.seed, suite.suite, task.id, case.id, variant)
                        messages = render_messages(task, case, variant, seed)
                        for repeat in range(settings.repeats):
                            key = AttemptKey(
                                model.name, suite.suite, task.id, case.id, variant.id, repeat
                            )
                            yield Attempt(
                                key=key,
                                model=model,
                                suite=suite,
                                task=task,
                                case=case,
                                variant=variant,
                                messages=messages,
                                seed=derive_seed(settings.seed, key),
                                max_tokens=cap,
                                noise_seed=seed,
                                judges=judges,
                            )


def estimate_input_tokens(messages: tuple[Message, ...]) -> int:
    """About four characters per token, plus a few tokens of chat framing per message."""
    return sum(len(m.content) // 4 + 4 for m in messages)


def estimate_output_tokens(task: Task, cap: int, case: Case | None = None) -> int:
    """The smallest length hint of the validators judging `case` (the task's alone without
    one), else the cap (an upper bound)."""
    checks = task.checks() if case is None else task.checks_for(case)
    hints = [h for h in (v.output_tokens_hint() for v in checks) if h is not None]
    return min([cap, *hints])


DEFAULT_TOKENS_PER_SECOND = 60.0
"""Assumed generation speed of a hosted model when the config does not say."""
REQUEST_OVERHEAD_S = 0.3
"""Assumed fixed time of one hosted call (network, queueing, first token)."""


def estimate_seconds(model: ModelSpec, input_tokens: int, output_tokens: int) -> float:
    """Wall time of one call: overhead, prompt processing (~5× generation speed), generation."""
    speed = model.tokens_per_second or DEFAULT_TOKENS_PER_SECOND
    return REQUEST_OVERHEAD_S + input_tokens / (speed * 5) + output_tokens / speed


def plan_table(plan: Plan) -> pd.DataFrame:
    """One row per (model, suite, task): attempts, estimated tokens, dollars and seconds."""
    import pandas as pd  # here, not at the top: a run plans too, and needs no pandas to run

    rows = []
    for attempt in plan.attempts:
        tokens_in = estimate_input_tokens(attempt.messages)
        tokens_out = estimate_output_tokens(attempt.task, attempt.max_tokens, attempt.case)
        price = price_for(attempt.model)
        seconds = estimate_seconds(attempt.model, tokens_in, tokens_out)
        rows.append(
            {
                "model": attempt.key.model,
                "suite": attempt.key.suite,
                "task": attempt.key.task,
                "attempts": 1,
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost_usd": price.cost(tokens_in, tokens_out, seconds)
                if price.known
                else float("nan"),
                "call_seconds": seconds,
            }
        )
    columns = ["model", "suite", "task", "attempts", "input_tokens", "output_tokens", "cost_usd"]
    if not rows:
        return pd.DataFrame(columns=[*columns, "seconds"])
    frame = pd.DataFrame(rows)
    table = frame.groupby(["model", "suite", "task"], sort=False).agg(
        attempts=("attempts", "sum"),
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
        cost_usd=("cost_usd", lambda s: s.sum(min_count=len(s))),
        call_seconds=("call_seconds", "sum"),
    )
    table = table.reset_index()
    parallel = {m.name: min(m.concurrency, plan.settings.concurrency) for m in plan.models}
    table["seconds"] = table["call_seconds"] / table["model"].map(parallel)
    return table.drop(columns="call_seconds")
