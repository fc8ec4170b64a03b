"""results.json: the scored run, versioned, with a shipped JSON Schema.

It is the stable machine interface: the report, the gate and other tools read it, never the
runner's objects. `RESULTS_VERSION` changes when a field changes meaning or goes away; new
optional fields do not change it. `results.schema.json` beside this module is generated from
these models (`margin schema --kind results` prints it) and a test keeps the two equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from margin.errors import UserError, invalid_data
from margin.journal.rundir import read_json, write_atomically
from margin.results.feature_rows import AreaRow, FeatureRow, MixRow
from margin.results.policy_rows import PolicyRow, PolicyRunRow
from margin.results.rows import (
    ConditionRow,
    DropRow,
    JudgeRow,
    MarginRow,
    ModelRow,
    PairRow,
    PassKRow,
    RecommendationRow,
    Row,
    SpreadRow,
    TaskRow,
    ValidatorRow,
)

RESULTS_VERSION = 2
"""2 added the detected / silent split of failures to every cell and policy, and each task's
production guards."""
RESULTS_NAME = "results.json"
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")


class SuiteFact(Row):
    name: str
    sha256: str | None
    """Of the run's copy of the suite file."""
    tasks: list[str]
    targets: dict[str, float]
    guards: dict[str, list[str]] = {}  # noqa: RUF012 (pydantic copies a default per instance)
    """Per task: the labels of its production guards (validators, or their parts, that need no
    `expect`: `json_fields` counts as a guard for "the answer is a JSON object"), then those its
    cases' own validators add (`max_words#2` beside a task's `max_words`)."""
    fingerprints: dict[str, dict[str, str]] = {}  # noqa: RUF012 (pydantic copies a default per instance)
    """Per task: sha256 of its `prompt` (system, prompt, paraphrases, vars), `cases` (inputs
    and expectations) and `validators`, so a gate can say what changed against a baseline."""


class ModelFact(Row):
    name: str
    model: str
    params: str | None
    api_base: str | None
    temperature: float
    max_tokens: int
    price_per_mtok: dict[str, float] | None
    price_per_second: float | None = None
    """Dollars per second of serving, for a self-hosted model priced by its hardware."""
    price_nominal: bool = False
    """The config's price is an assumption, not a bill (the report says so)."""
    parallel: int | None = None
    """Calls decoded together in one local model (`parallel`), if set."""
    batched_attempts: int = 0
    """Its attempts run under batching: their latency is a shared model's, not one call's."""


class SourceFacts(Row):
    """What results.json was computed from: `margin report` reuses it while these still hold."""

    margin_version: str
    """The margin that scored."""
    files: dict[str, str | None]
    """Per file scoring read (run.json, the journal, judges.json, suites/NAME.yaml), relative
    to the run directory: "size:sha256", or null when it was absent."""


class RunFacts(Row):
    """What was run, by which versions, and what it cost."""

    identity: str
    margin_version: str
    litellm_version: str
    written_at: str | None
    """When the run directory was last written."""
    scored_at: str
    suites: list[SuiteFact]
    models: list[ModelFact]
    settings: dict[str, Any]
    attempts: int
    judged: int
    infra_errors: dict[str, int]
    """By class (RateLimited, ServerError, …)."""
    cache_hits: int
    over_max_tokens: int = 0
    """Answers longer than the max_tokens sent: their providers ignored the cap."""
    spent_usd: float
    repeats: int
    """The most repeats any attempt reached."""
    regime: str
    """What the repeats measure at the run's temperatures."""
    latency_note: str | None = None
    """Which models' latency was measured under batching (`parallel`), if any."""
    source: SourceFacts | None = None
    """The files this document was scored from, as they were (absent in older documents)."""


class Results(Row):
    """A scored run."""

    results_version: int
    features: list[FeatureRow] = []  # noqa: RUF012 (pydantic copies a default per instance)
    """The decision per feature: which model (or policy) each task ships on."""
    areas: list[AreaRow] = []  # noqa: RUF012 (pydantic copies a default per instance)
    """Per product area (suite): the model that serves it whole, if one does."""
    mix: MixRow | None = None
    """Each feature on its own choice against one model for everything, at the tasks' traffic."""
    run: RunFacts
    recommendation: RecommendationRow
    models: list[ModelRow]
    tasks: list[TaskRow]
    conditions: list[ConditionRow]
    validators: list[ValidatorRow]
    validators_by_condition: list[ValidatorRow]
    pass_k: list[PassKRow]
    noise_drops: list[DropRow]
    paraphrase_spread: list[SpreadRow]
    margins: list[MarginRow]
    comparisons: list[PairRow]
    policies: list[PolicyRow] = []  # noqa: RUF012 (pydantic copies a default per instance)
    """The run's `run.policies`, estimated per task."""
    policy_runs: list[PolicyRunRow] = []  # noqa: RUF012 (pydantic copies a default per instance)
    """The policies run for real (`margin run --policy`), measured per task."""
    judges: list[JudgeRow] = []  # noqa: RUF012 (pydantic copies a default per instance)
    """The run's `judge` validators, with their human-label check and trust."""


def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json."""
    schema = Results.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "margin results"
    schema["$id"] = f"https://margin.dev/schemas/results-{RESULTS_VERSION}.json"
    return schema


def write_results(folder: Path, results: Results, out: Path | None = None) -> Path:
    """Write results.json atomically into `out` (default: the run directory)."""
    path = (out or folder) / RESULTS_NAME
    write_atomically(path, results.model_dump_json(indent=1))
    return path


def read_results(path: Path) -> Results:
    """A results.json (or a run directory holding one); a file that cannot be read, is not JSON,
    is of another version or does not fit the schema is a UserError naming it (and the field)."""
    if path.is_dir():
        path = path / RESULTS_NAME
    data = read_json(path)
    found = data.get("results_version") if isinstance(data, dict) else None
    if found != RESULTS_VERSION:
        raise UserError(
            f"results version {found!r}; this margin reads version {RESULTS_VERSION}",
            path=path,
        )
    try:
        return Results.model_validate(data)
    except ValidationError as exc:
        raise invalid_data(exc, "not margin results", path) from None
