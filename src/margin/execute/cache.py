"""An on-disk answer cache (SQLite) keyed on everything that shapes an answer.

The key holds the provider, api_base, model, sampling parameters, the exact messages and the
repeat index, so repeats never collapse into one cached answer. A hit never calls litellm; the
runner records it as a hit and counts its cost as saved, not spent.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from margin.config import ModelSpec
from margin.journal.records import AttemptRecord, Journal
from margin.plan import Attempt

CACHE_FILE = "answers.sqlite3"
PREFETCH_MAX = 20_000
"""Up to this many pending attempts, cached answers are read ahead in one pass (a few MB);
above it only which are cached, and each answer is read when its attempt runs."""


@dataclass(frozen=True)
class CachedAnswer:
    """What a cache hit replays."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    cost_usd: float | None
    finish_reason: str | None = None


_REPLAYABLE = "(cost_usd IS NULL OR (cost_usd >= 0 AND cost_usd < 1e308))"
"""Rows a hit may replay: a cost that is not a finite number of dollars, 0 or more (a damaged
or hand-edited cache), is no answer at all — the call is made again and overwrites it."""

_KEY_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
"""The keys' JSON: `json.dumps(…, sort_keys=True, ensure_ascii=False)`'s bytes, without building an
encoder per call (half of a key's cost)."""


def cache_key(model: ModelSpec, attempt: Attempt) -> str:
    """sha256 of everything that shapes the answer, the repeat index included."""
    identity: dict[str, object] = {
        "provider": model.provider,
        "api_base": model.api_base,
        "model": model.model,
        "temperature": model.sampling.temperature,
        "top_p": model.sampling.top_p,
        "max_tokens": attempt.max_tokens,
        "seed": attempt.seed,
        "messages": [[m.role, m.content] for m in attempt.messages],
        "repeat": attempt.key.repeat,
    }
    if attempt.key.policy:  # a policy's step is a sample of its own, never a bare attempt's
        identity["policy_step"] = f"{attempt.key.policy}#s{attempt.key.step}"
    text = _KEY_JSON.encode(identity)
    return hashlib.sha256(text.encode()).hexdigest()


def judge_cache_key(
    judge: ModelSpec, messages: list[dict[str, str]], max_tokens: int, index: int
) -> str:
    """sha256 of a judge call: the judge model, its prompt (rubric, prompt and output rendered
    in it) and the judge repeat index."""
    identity = {
        "judge": [judge.provider, judge.api_base, judge.model],
        "sampling": [judge.sampling.temperature, judge.sampling.top_p, max_tokens],
        "messages": [[m["role"], m["content"]] for m in messages],
        "index": index,
    }
    text = _KEY_JSON.encode(identity)
    return hashlib.sha256(text.encode()).hexdigest()


class AnswerCache:
    """A SQLite table of answers; one connection, used from the event loop's thread."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
            " input_tokens INTEGER, output_tokens INTEGER, latency_s REAL, cost_usd REAL,"
            " finish_reason TEXT)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(answers)")}
        if "finish_reason" not in columns:  # a cache written by an earlier margin
            self._db.execute("ALTER TABLE answers ADD COLUMN finish_reason TEXT")

    def get(self, key: str) -> CachedAnswer | None:
        """The cached answer for `key`, if any."""
        row = self._db.execute(
            "SELECT text, input_tokens, output_tokens, latency_s, cost_usd, finish_reason"
            f" FROM answers WHERE key = ? AND {_REPLAYABLE}",
            (key,),
        ).fetchone()
        return CachedAnswer(*row) if row else None

    def known(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` have an answer (one query per thousand keys)."""
        return {row[0] for row in self._rows_for("key", keys)}

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedAnswer]:
        """The cached answers among `keys` (one query per thousand keys)."""
        columns = "key, text, input_tokens, output_tokens, latency_s, cost_usd, finish_reason"
        return {key: CachedAnswer(*row) for key, *row in self._rows_for(columns, keys)}

    def _rows_for(self, columns: str, keys: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """`columns` of the rows whose key is among `keys`, a thousand keys per query."""
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT {columns} FROM answers WHERE key IN ({marks}) AND {_REPLAYABLE}", chunk
            )

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Store (or replace) the answer for `key`."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                answer.text,
                answer.input_tokens,
                answer.output_tokens,
                answer.latency_s,
                answer.cost_usd,
                answer.finish_reason,
            ),
        )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def answer_of(record: AttemptRecord) -> CachedAnswer:
    """What a judged record's answer replays as from the cache."""
    assert record.output is not None and record.latency_s is not None
    return CachedAnswer(
        record.output,
        record.input_tokens,
        record.output_tokens,
        record.latency_s,
        record.cost_usd,
        record.finish_reason,
    )


class JournalAndCache:
    """The run's owner-side sink: journal the record, then cache its answer.

    In that order: a kill between the two leaves an answer that will be called (and paid) again,
    never a paid call that resumes as a free cache hit missing from the journal's spend.
    """

    def __init__(self, journal: Journal, cache: AnswerCache | None) -> None:
        self.journal = journal
        self.cache = cache

    def append(self, record: AttemptRecord, cache_key: str | None = None) -> None:
        """Journal `record`; then, if `cache_key` is set, cache its answer."""
        self.journal.append(record)
        if cache_key and self.cache is not None and record.output is not None:
            self.cache.put(cache_key, answer_of(record))


@dataclass
class CacheProbe:
    """What the cache already answers, looked up in one pass before the run."""

    calls: list[Attempt]
    """The attempts that will call their model: those without an answer in the cache."""
    keys: dict[str, str] = field(default_factory=dict)
    """Each probed attempt's cache key, by attempt key (computed once)."""
    known: set[str] = field(default_factory=set)
    """The cache keys the cache holds an answer for."""
    answers: dict[str, CachedAnswer] = field(default_factory=dict)
    """Those answers, read ahead when the run is small enough to hold them (PREFETCH_MAX)."""


def probe_cache(pending: Sequence[Attempt], cache_dir: Path | None, read_cache: bool) -> CacheProbe:
    """Look every attempt up in the cache at once. Workers are chosen for the calls only: answers
    replayed from the cache need neither worker processes nor litellm."""
    if cache_dir is None or not read_cache or not (cache_dir / CACHE_FILE).exists():
        return CacheProbe(list(pending))
    keys = {str(a.key): cache_key(a.model, a) for a in pending}
    cache = AnswerCache(cache_dir)
    try:
        if len(keys) <= PREFETCH_MAX:
            answers = cache.get_many(list(keys.values()))
            known = set(answers)
        else:
            answers, known = {}, cache.known(list(keys.values()))
    finally:
        cache.close()
    calls = [a for a in pending if keys[str(a.key)] not in known]
    return CacheProbe(calls, keys, known, answers)
