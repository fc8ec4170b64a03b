"""Configs: model sets and run settings, validated like suites; secrets stay `${VAR}` references."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from margin.errors import ConfigError
from margin.suite.source import read_yaml, validate_model
from margin.suite.tasks import PERTURB_KINDS, Ident, Levels, check_levels

CACHE_ENV = "MARGIN_CACHE_DIR"
"""The environment variable naming margin's cache folder (answers, joined local model files)."""


def default_cache_dir() -> Path:
    """`$MARGIN_CACHE_DIR`, else the user's XDG cache folder for margin."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir  # on use: 20 ms that a set $MARGIN_CACHE_DIR skips

    return Path(user_cache_dir("margin"))


_SECRET_QUERY = frozenset(
    {"api_key", "apikey", "api-key", "key", "token", "access_token", "secret", "password", "sig"}
)
"""Query parameters that carry credentials: refused in an api_base like a literal key."""
_SECRET_REF = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}$")
_PARAMS = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[KMBT])$")
_UNITS = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Price(_Model):
    """A price override (else litellm's price map is used): dollars per million tokens, and for
    a self-hosted model dollars per second of serving (litellm's `input_cost_per_second`), so
    "cheapest" ranks models that run on one's own hardware by what they cost to run."""

    input_per_mtok: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """$ per 1M prompt tokens."""
    output_per_mtok: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """$ per 1M completion tokens."""
    per_second: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    """$ per second of a call (the hardware's hourly price / 3,600, divided by the calls it
    serves at once): each attempt costs its latency times this."""
    nominal: bool = False
    """The price is an assumption (e.g. a typical cloud GPU's hourly rate), not a bill: the
    report says so beside every cost."""


class Sampling(_Model):
    """The product's own sampling settings; every repeat uses them with its own seed."""

    temperature: float = Field(default=0.0, ge=0, le=2)
    """Sampling temperature (0 = greedy)."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling cut-off."""
    max_tokens: int = Field(default=256, ge=1, le=32768)
    """Cap on the answer's tokens (a task's `max_tokens` lowers it)."""


class ModelSpec(_Model):
    """One model to evaluate, by litellm id."""

    name: Ident
    """Short name used in keys, tables and the recommendation, e.g. `qwen-0.5b`."""
    model: str = Field(min_length=1)
    """litellm model id: `openai/gpt-4o-mini`, `ollama_chat/qwen2.5:0.5b`, `local/smollm2-135m`."""
    api_base: str | None = None
    """Endpoint for self-hosted or OpenAI-compatible servers, e.g. `http://127.0.0.1:8080/v1`."""
    api_key: str | None = None
    """A reference to an environment variable, `${OPENAI_API_KEY}`; never the key itself."""
    params: str | None = None
    """Parameter count, e.g. `135M`, `1.5B` (for ordering and the report)."""
    price: Price | None = None
    """Price override; without it litellm's bundled price map is used."""
    concurrency: int = Field(default=4, ge=1, le=1024)
    """Calls in flight at once for this model."""
    rpm: int | None = Field(default=None, ge=1)
    """Requests-per-minute limit: work queues for it, it is not rejected."""
    timeout: float = Field(default=60.0, gt=0, le=3600)
    """Seconds before one call counts as timed out."""
    sampling: Sampling = Sampling()
    """Sampling settings."""
    tokens_per_second: float | None = Field(default=None, gt=0)
    """Generation speed, for `margin plan`'s time estimate."""
    parallel: int | None = Field(default=None, ge=1, le=16)
    """A local model (`local/…`) only: decode this many calls together in one llama.cpp instance
    (continuous batching) — more throughput, but each call's latency is then measured while
    others share the cores, so its attempts carry `batched` and the report says so. Opt-in;
    `concurrency` must be at least this."""

    @model_validator(mode="after")
    def _parallel_is_local(self) -> ModelSpec:
        if self.parallel is not None and self.parallel > 1:
            if self.provider != "local":
                raise ValueError("parallel is for in-process models (local/…) only")
            if self.concurrency < self.parallel:
                raise ValueError(
                    f"parallel: {self.parallel} needs concurrency: {self.parallel} or more"
                )
        return self

    @property
    def batched(self) -> bool:
        """Its calls share the model with others in flight (`parallel` > 1)."""
        return (self.parallel or 1) > 1

    @field_validator("api_key")
    @classmethod
    def _reference_only(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.match(value):
            raise ValueError(
                "write a reference like ${OPENAI_API_KEY}; keys never go in config files"
            )
        return value

    @field_validator("api_base")
    @classmethod
    def _plain_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("api_base must be an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "api_base carries credentials (user:password@); put the key in the environment"
                " and name it with api_key: ${VAR}"
            )
        keys = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
        if keys & _SECRET_QUERY:
            raise ValueError(
                "api_base carries a key in its query string; put the key in the environment"
                " and name it with api_key: ${VAR}"
            )
        return value

    @field_validator("params")
    @classmethod
    def _params_form(cls, value: str | None) -> str | None:
        if value is not None and not _PARAMS.match(value):
            raise ValueError("write the parameter count like 135M, 0.5B or 70B")
        return value

    @property
    def param_count(self) -> float | None:
        """`params` as a number (1.5B → 1.5e9)."""
        found = _PARAMS.match(self.params or "")
        return float(found["num"]) * _UNITS[found["unit"]] if found else None

    @property
    def provider(self) -> str:
        """The litellm provider prefix (`openai` in `openai/gpt-4o-mini`)."""
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"

    def resolve_api_key(self) -> str | None:
        """The key from the environment at call time; ConfigError when the variable is unset."""
        if self.api_key is None:
            return None
        name = _SECRET_REF.match(self.api_key)
        assert name is not None  # checked by _reference_only
        value = os.environ.get(name["name"])
        if not value:
            raise ConfigError(f"environment variable {name['name']} is not set (model {self.name})")
        return value


NoiseLevels = dict[str, Levels]


class JudgeSettings(_Model):
    """The default judge of `judge` validators."""

    model: str | None = None
    """A model name from the models config (a validator's own `model` wins)."""
    repeats: int = Field(default=1, ge=1, le=25)
    """Ask the judge this many times per output; the majority decides, a tie is unscored."""
    min_kappa: float = Field(default=0.6, ge=-1, le=1)
    """A judge whose Cohen's κ against human labels (`margin judge-check`) is below this — or
    that was never checked — is flagged in the report and cannot decide a gate."""


class RunSettings(_Model):
    """How a run samples: repeats, concurrency, budget, seed, target."""

    repeats: int = Field(default=3, ge=1, le=1000)
    """Calls per (model, case, variant)."""
    concurrency: int = Field(default=16, ge=1, le=4096)
    """Global cap on calls in flight across all models."""
    max_cost: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Stop scheduling before the estimated spend passes this many dollars."""
    target: float | None = Field(default=None, gt=0, le=1)
    """Override every suite's reliability target."""
    max_p95_s: float | None = Field(default=None, gt=0)
    """Latency budget in seconds: a model whose p95 latency on a task is above it (or above the
    task's own `max_p95_s`) is not recommended."""
    seed: int = 0
    """Base seed; each attempt's seed is derived from it and the attempt's key."""
    paraphrases: bool = True
    """Run the authored paraphrases as variants beside the clean prompt."""
    noise: bool = True
    """Run noise variants (the task's `perturb` levels, else `levels`) beside the clean prompt."""
    levels: NoiseLevels = {}
    """Default noise levels per kind; a task's `perturb` overrides them kind by kind."""
    retries: int = Field(default=5, ge=0, le=50)
    """Retries of a call that failed for infrastructure reasons."""
    policies: list[str] = []
    """Delivery policies to estimate from the recorded repeats, e.g. `retry(qwen-0.5b, 2)`,
    `cascade(qwen-0.5b, qwen-1.5b)` (`margin policies`)."""
    judge: JudgeSettings = JudgeSettings()
    """The default judge of `judge` validators: `{model: NAME, repeats: 1, min_kappa: 0.6}`."""
    run_policies: bool = False
    """Also run each of `policies` for real after the bare attempts (`margin run --policy`):
    `repeats` executions per prompt, each try a journaled attempt linked to its execution."""
    adaptive: bool = False
    """Adaptive repeats: run in rounds and give more repeats only to undecided cells, up to
    `max_repeats` (see docs/adaptive.md)."""
    max_repeats: int = Field(default=20, ge=1, le=1000)
    """With `adaptive`: the repeat cap per (model, case, variant)."""
    adaptive_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    """With `adaptive`: error level of the always-valid confidence sequence."""
    early_stop: bool = False
    """Run each task's cases in a seeded random order, in rounds, and stop giving a model a
    task's cases once its model × task cell is decided by the confidence sequence of adaptive
    repeats (`adaptive_alpha`) and the report's interval (docs/measured.md, "Where the first run's
    time goes"). Not with `adaptive` or `--shard`."""
    adaptive_delta: float = Field(default=0.02, ge=0, lt=0.5)
    """Accepted for older configs; no effect. A cell whose sequence lies within ±δ of its target
    no longer stops as settled: the report would call it undecided (docs/adaptive.md)."""
    backoff_s: float = Field(default=1.0, ge=0, le=600)
    """First retry waits up to this long (random jitter), doubling each time."""
    workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = "auto"
    """Processes making calls: `auto` uses one per core (up to 4) for large runs of remote
    models without a budget cap, else one. Local in-process models always use one."""
    executor: Literal["local", "ray"] = "local"
    """Where attempts run: `local` (this machine: one process or a worker pool) or `ray` (a
    Ray cluster; the driver writes the journal; `pip install 'margin[ray]'`)."""
    ray_address: str | None = None
    """With `executor: ray`: the cluster to join (`ray://host:10001`, `auto`); none starts a
    local instance on 127.0.0.1."""
    backoff_max_s: float = Field(default=60.0, ge=0, le=3600)
    """Cap on one retry's wait (a provider's Retry-After is honoured up to 120 s)."""

    @field_validator("levels")
    @classmethod
    def _known_kinds(cls, value: NoiseLevels) -> NoiseLevels:
        unknown = sorted(set(value) - set(PERTURB_KINDS))
        if unknown:
            known = ", ".join(PERTURB_KINDS)
            raise ValueError(f"unknown noise kind {unknown[0]!r}; known: {known}")
        for kind, levels in value.items():
            check_levels(kind, levels)
        return value


class ConfigFile(_Model):
    """A config file: a model set, run settings, or both."""

    models: list[ModelSpec] = []
    """Models to evaluate."""
    run: RunSettings | None = None
    """Run settings (defaults apply to what is left out)."""

    @model_validator(mode="after")
    def _unique_names(self) -> ConfigFile:
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model name {dupes[0]!r} is used twice")
        return self


def load_config(path: Path | str) -> ConfigFile:
    """Read and validate one config file; raise ConfigError naming file, line and field."""
    source = read_yaml(Path(path), ConfigError)
    if not isinstance(source.data, dict):
        raise source.error("a config is a mapping with keys models and/or run", (), ConfigError)
    return validate_model(ConfigFile, source, ConfigError)


def load_models(path: Path | str, only: Iterable[str] = ()) -> list[ModelSpec]:
    """The model set in `path` (at least one model), restricted to the names in `only` if any."""
    config = load_config(path)
    if not config.models:
        raise ConfigError("no models: add a `models:` list", path=path, field="models")
    wanted = list(only)
    unknown = sorted(set(wanted) - {m.name for m in config.models})
    if unknown:
        known = ", ".join(m.name for m in config.models)
        raise ConfigError(f"no model {unknown[0]!r} in the set; models: {known}", path=path)
    return [m for m in config.models if not wanted or m.name in wanted]


def load_run_settings(paths: Iterable[Path | str], **overrides: Any) -> RunSettings:
    """Run settings from the files' `run:` sections (later files win), then non-None overrides."""
    merged: dict[str, Any] = {}
    for path in paths:
        run = load_config(path).run
        if run is not None:
            merged.update(run.model_dump(exclude_unset=True))
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return RunSettings.model_validate(merged)
    except ValueError as exc:
        raise ConfigError(f"run settings: {exc}") from None
