"""The journal: one versioned record per finished attempt, appended and flushed as it finishes.

It is the one source of truth for every later stage. A run killed mid-write leaves at most one
partial last line; opening the journal again cuts it off, so resuming loses and repeats nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from margin.errors import UserError, invalid_data, not_utf8
from margin.validators import Verdict

SCHEMA_VERSION = 4
"""2 added finish_reason, truncated and dropped_params; 3 added policy and step (a step of a
delivery policy run for real), judge_cost_usd and the `judge` trace and `unscored` flag of a
verdict; 4 added guards_passed and guards_failed (what production's checks said). Records of
earlier versions still read (their failures are neither detected nor silent: unknown)."""
JOURNAL_NAME = "journal.jsonl"


class MessageRecord(BaseModel):
    """A chat message exactly as sent."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    role: str
    """`system` or `user`."""
    content: str
    """The rendered text."""


class AttemptRecord(BaseModel):
    """One finished attempt: what was sent, what came back, how it was judged, what it cost."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    schema_version: Literal[1, 2, 3, 4] = 4
    """Version of this record format."""
    key: str
    """`model|suite/task/case|variant|rREPEAT`, unique in a journal."""
    model: str
    """The model's name in the config."""
    litellm_model: str
    """The litellm model id called."""
    suite: str
    """Suite name."""
    task: str
    """Task id."""
    case: str
    """Case id."""
    variant: str
    """Variant id (`p0`, `p1`, `p0~typos@0.05v1`)."""
    paraphrase: int
    """Paraphrase index (0 = the task's prompt)."""
    noise_kind: str
    """Perturbation kind (`clean` when none)."""
    noise_level: float
    """Perturbation level (0 when clean)."""
    variant_version: int
    """Generator version of the variant."""
    noise_seed: int = 0
    """Seed of the variant's noise (the same for every model and repeat of the case)."""
    repeat: int
    """Repeat index, 0-based."""
    seed: int
    """Seed sent with the call, derived from the run seed and the key."""
    temperature: float
    """Sampling temperature used."""
    messages: list[MessageRecord]
    """The exact messages sent."""
    output: str | None
    """The model's answer; None when the call failed for infrastructure reasons."""
    verdicts: list[Verdict]
    """Each validator's verdict (empty on an infra error)."""
    passed: bool | None
    """Every validator passed; None on an infra error (never counted as a model failure)."""
    partial: float | None
    """Share of validators passed; None on an infra error."""
    guards_passed: bool | None = None
    """Every production guard (a check that needs no `expect`) passed: a failure with True here
    is silent, production could not see it. True when the task has no guard; None on an infra
    error, when a guard could not decide, and in records before version 4."""
    guards_failed: list[str] = []
    """The labels of the guards that failed (`json_schema`, `regex#2`), in task order."""
    latency_s: float | None
    """Wall time of the successful call (the recorded one for a cache hit)."""
    input_tokens: int = 0
    """Prompt tokens reported by the provider."""
    output_tokens: int = 0
    """Completion tokens reported by the provider."""
    cost_usd: float | None = 0.0
    """Dollars spent on this attempt (0 on a cache hit; None when the price is unknown)."""
    cost_saved_usd: float = 0.0
    """Dollars a cache hit saved."""
    judge_cost_usd: float | None = 0.0
    """Dollars the `judge` validators' calls cost (apart from the model's; None when a judge's
    price is unknown)."""
    error: str | None = None
    """Infra error class (RateLimited, ProviderTimeout, ServerError, …) when the call failed."""
    error_message: str | None = None
    """The provider's message, with secrets removed."""
    retries: int = 0
    """Retries spent on infrastructure faults before the recorded outcome."""
    cache_hit: bool = False
    """Whether the answer came from margin's cache (no call was made)."""
    finish_reason: str | None = None
    """Why the provider stopped: `stop`, `length` (cut off at max_tokens), … (None if unsaid)."""
    truncated: bool = False
    """The answer was cut off at `max_tokens` (finish_reason `length`)."""
    max_tokens: int | None = None
    """The cap on the answer's tokens sent with the call."""
    over_max_tokens: bool = False
    """The provider reported more answer tokens than `max_tokens`: it ignored the cap, so the
    answer's length and cost are not bounded by it (optional: no schema version of its own)."""
    dropped_params: list[str] = []
    """Sampling parameters the provider does not take, so they were not sent (e.g. `seed`)."""
    judge_skipped: bool = False
    """The task's `judge` validators were not asked: a deterministic check had already failed
    (and a guard had, when a judge is a guard), so no judge verdict could change the record.
    Their verdicts are absent: `partial` is over the validators asked (optional: no schema
    version of its own; absent in older records, which asked every judge)."""
    batched: bool = False
    """The call ran with others decoded together in one local model (`parallel` > 1): its
    latency was measured under batching, not alone."""
    policy: str | None = None
    """The delivery policy (`retry(m, 2)`) whose execution this attempt is a step of; None for
    an attempt of a bare model. A step's `repeat` is its execution's index."""
    step: int | None = None
    """0-based step of that policy execution (every try counts as a step)."""
    started_at: datetime
    """When the attempt started (UTC)."""
    finished_at: datetime
    """When it finished (UTC)."""

    @field_validator("cost_usd", "cost_saved_usd", "judge_cost_usd")
    @classmethod
    def _dollars(cls, value: float | None) -> float | None:
        # A NaN spend compares false against the cap (it switched the cap off on resume), a
        # negative one made room again: a record holding either is damaged, not a cost.
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise PydanticCustomError(
                "dollars",
                "a cost is a finite number of dollars, 0 or more (got {value})",
                {"value": value},
            )
        return value

    @property
    def infra_error(self) -> bool:
        """The call failed for reasons outside the model."""
        return self.error is not None


class JournalSink(Protocol):
    """Where finished attempts go: the journal file, or a pipe to the process that owns it.

    `cache_key` is set when the record's answer should be cached: the owner caches it only after
    the record is journaled, so a kill in between never turns a paid call into a free cache hit.
    """

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None: ...


class Journal:
    """An append-only journal file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def __enter__(self) -> Journal:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self._file = self.path.open("a", encoding="utf-8", buffering=1 << 16)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        """Write one record. A record that cost a call is flushed to the OS at once, so a killed
        process loses nothing paid for. An answer replayed from the cache at no cost waits in the
        buffer for the next flush (a real call's, or closing): a kill loses at most a buffer of
        such replays, and the next run replays them again from the cache, free and alike."""
        assert self._file is not None, "use Journal as a context manager"
        self._file.write(record.model_dump_json() + "\n")
        if not record.cache_hit or record.judge_cost_usd:
            self._file.flush()


def repair_tail(path: Path) -> None:
    """Cut a partial last line left by a process killed mid-write."""
    if not path.exists():
        return
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        block = 1 << 16
        position = size
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            chunk = handle.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                handle.truncate(start + newline + 1)
                return
            position = start
        handle.truncate(0)


def journal_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The journal's finished lines with their numbers (a partial last line from a killed run is
    not a finished attempt); an unreadable file or a line that is not UTF-8 is a UserError naming
    it. Every reader of the journal's text goes through here."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UserError(f"cannot read the journal: {exc.strerror or exc}", path=path) from None
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    return
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise not_utf8(path, raw, exc, number) from None
        except OSError as exc:
            raise UserError(f"cannot read the journal: {exc.strerror or exc}", path=path) from None


def parse_record(line: str, path: Path, number: int) -> AttemptRecord:
    """One journal line as a record; a line that is not one is a UserError naming it and the
    field at fault."""
    try:
        return AttemptRecord.model_validate_json(line)
    except ValidationError as exc:
        raise invalid_data(exc, "not a margin journal record", path, number) from None


def read_journal(path: Path) -> Iterator[AttemptRecord]:
    """Every record in the journal; a damaged line is a UserError naming its line."""
    if not path.exists():
        return
    for number, line in journal_lines(path):
        yield parse_record(line, path, number)


@dataclass(frozen=True)
class JournalState:
    """What a run directory's journal already holds, read in one pass."""

    latest: dict[str, AttemptRecord]
    """The latest record of every key."""
    spent_usd: float
    """Dollars billed by every record, earlier tries of a retried key included."""

    def finished(self, retry_errors: bool = False) -> set[str]:
        """Keys not to run again; with `retry_errors`, not those whose latest record is an
        infra error (they are to be attempted again)."""
        return {k for k, r in self.latest.items() if not (retry_errors and r.infra_error)}


def journal_state(path: Path) -> JournalState:
    """The journal's latest record per key and its total spend, in one read."""
    latest: dict[str, AttemptRecord] = {}
    spent = 0.0
    for record in read_journal(path):
        latest[record.key] = record
        spent += (record.cost_usd or 0.0) + (record.judge_cost_usd or 0.0)
    return JournalState(latest, spent)


def latest_records(path: Path) -> dict[str, AttemptRecord]:
    """The latest record of every key: the journal keeps history (a retried infra error leaves
    its first record), and every reader takes the last word on each attempt."""
    return journal_state(path).latest


def finished_keys(path: Path, retry_errors: bool = False) -> set[str]:
    """Keys of the attempts already recorded; with `retry_errors`, not those whose latest
    record is an infra error (they are to be attempted again)."""
    return journal_state(path).finished(retry_errors)
