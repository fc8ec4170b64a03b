"""The journal as frames, read fast: one row per attempt, one row per validator verdict.

A large journal is parsed by Arrow's multi-threaded JSON reader with an explicit schema of the
columns statistics need (the prompts and answers are skipped, not parsed into objects). Only
when Arrow refuses a line, or a byte is not UTF-8 (Arrow does not look at the fields it skips),
is the journal read again record by record through the pydantic model, which names the
offending line. The latest record of each attempt wins: a retried infra
error leaves its earlier record in the journal's history.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from margin.journal.records import AttemptRecord, read_journal
from margin.stats.conditions import condition_name

LABELS = ["model", "suite", "task", "case", "variant", "noise_kind", "error"]
"""Text columns kept as categories (few distinct values, many rows)."""
ITEM = ["suite", "task", "case", "variant", "repeat"]
"""What identifies an attempt across models: the paired comparison matches on it."""

_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int64()),
        ("model", pa.string()),
        ("suite", pa.string()),
        ("task", pa.string()),
        ("case", pa.string()),
        ("variant", pa.string()),
        ("paraphrase", pa.int64()),
        ("noise_kind", pa.string()),
        ("noise_level", pa.float64()),
        ("repeat", pa.int64()),
        ("passed", pa.bool_()),
        ("guards_passed", pa.bool_()),
        ("partial", pa.float64()),
        ("latency_s", pa.float64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("cost_saved_usd", pa.float64()),
        ("judge_cost_usd", pa.float64()),
        ("error", pa.string()),
        ("cache_hit", pa.bool_()),
        ("truncated", pa.bool_()),
        ("over_max_tokens", pa.bool_()),
        ("batched", pa.bool_()),
        ("policy", pa.string()),
        ("step", pa.int64()),
        (
            "verdicts",
            pa.list_(pa.struct([("validator", pa.string()), ("passed", pa.bool_())])),
        ),
    ]
)
_REQUIRED = ["schema_version", "model", "suite", "task", "case", "variant", "repeat"]
_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class Attempts:
    """A journal read for scoring."""

    frame: pd.DataFrame
    """One row per attempt (latest record per key): the LABELS as categories, `condition`,
    `paraphrase`, `noise_level`, `repeat`, `judged` (not an infra error), `passed` (1.0 / 0.0,
    NaN on an infra error), `guarded` (every production guard passed: 1.0 / 0.0, NaN when not
    judged or unknown, as in journals before version 4), `partial`, `latency_s`, tokens,
    `cost_usd`, `cost_saved_usd`, `cache_hit`, `truncated`, `over_max_tokens`, `batched`."""
    verdicts: pd.DataFrame
    """One row per validator verdict of a judged attempt: `row` (index into `frame`),
    `validator` (its name; `name#2` for a second verdict of the same name in its record),
    `passed`."""
    steps: pd.DataFrame | None = None
    """The steps of delivery policies run for real (`margin run --policy`), the frame's columns
    plus `policy` and `step`; kept apart so that they never count as a bare model's attempts."""


def read_attempts(path: Path) -> Attempts:
    """The journal at `path` for scoring; a damaged record is a UserError naming its line."""
    table = _read_table(path)
    if table is None or not _costs_are_dollars(table):
        return _from_records(path)
    return _split(table)


def _split(table: pa.Table) -> Attempts:
    """Bare attempts in `frame`, policy steps (if any) in `steps`."""
    is_step = pc.fill_null(pc.invert(pc.is_null(table.column("policy"))), False)
    if not pc.any(is_step).as_py():
        return _frames(table)
    bare = _frames(table.filter(pc.invert(is_step)))
    steps = _frames(table.filter(is_step), extra=["policy", "step"])
    return Attempts(bare.frame, bare.verdicts, steps.frame)


def _read_table(path: Path) -> pa.Table | None:
    """Arrow's parse of the journal, or None when it cannot vouch for every line (the exact
    path then names the first damaged one)."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return _SCHEMA.empty_table()
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            whole = handle.read(1) == b"\n"
            end = handle.tell()
        source: object = str(path)  # Arrow streams the file block by block: memory holds the table
        if not whole:  # a partial last line from a killed run is not an attempt: parse up to it
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end == 0:
                return _SCHEMA.empty_table()
            source = pa.BufferReader(pa.py_buffer(data).slice(0, end))
        if not _is_text(path, end):
            return None
    except OSError:
        return None
    try:
        table = pa_json.read_json(
            source,
            read_options=pa_json.ReadOptions(block_size=_BLOCK_BYTES),
            parse_options=pa_json.ParseOptions(
                explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if any(table.column(name).null_count for name in _REQUIRED):
        return None
    versions = pc.unique(table.column("schema_version")).to_pylist()
    if not set(versions) <= {1, 2, 3, 4}:
        return None
    return table


def _is_text(path: Path, end: int) -> bool:
    """Whether the journal's first `end` bytes are UTF-8. Arrow checks only the fields it reads
    (not the prompts and answers it skips), and every reader must agree on what is damaged.
    Streamed: memory holds a block."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        left = end
        while left > 0:
            block = handle.read(min(_BLOCK_BYTES, left))
            if not block:
                return True
            left -= len(block)
            try:
                decoder.decode(block, final=left <= 0)
            except UnicodeDecodeError:
                return False
    return True


def _from_records(path: Path) -> Attempts:
    """The slow, exact path: every record validated; raises on the first bad line."""
    return attempts_of(read_journal(path))


def _frames(table: pa.Table, extra: tuple[str, ...] | list[str] = ()) -> Attempts:
    columns = {}
    labels = [*LABELS, *[name for name in extra if name == "policy"]]
    for name in labels:
        columns[name] = table.column(name).dictionary_encode().to_pandas()
    if "step" in extra:
        columns["step"] = table.column("step").fill_null(0).to_numpy().astype(np.int64)
    for name in ["paraphrase", "repeat", "input_tokens", "output_tokens"]:
        columns[name] = table.column(name).fill_null(0).to_numpy().astype(np.int64)
    for name in ["noise_level", "partial", "latency_s", "cost_usd", "cost_saved_usd",
                 "judge_cost_usd"]:  # fmt: skip
        columns[name] = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    columns["noise_level"] = np.nan_to_num(columns["noise_level"])
    columns["cost_saved_usd"] = np.nan_to_num(columns["cost_saved_usd"])
    columns["judge_cost_usd"] = np.nan_to_num(columns["judge_cost_usd"])  # none before v3
    for name in ["cache_hit", "truncated", "over_max_tokens", "batched"]:  # may be absent
        columns[name] = table.column(name).fill_null(False).to_numpy(zero_copy_only=False)
    passed = table.column("passed")
    frame = pd.DataFrame(columns)
    frame["judged"] = frame["error"].isna().to_numpy() & ~passed.is_null().to_numpy(
        zero_copy_only=False
    )
    frame["passed"] = np.where(
        frame["judged"], passed.fill_null(False).to_numpy(zero_copy_only=False), np.nan
    )
    guarded = table.column("guards_passed")
    frame["guarded"] = np.where(
        frame["judged"].to_numpy() & ~guarded.is_null().to_numpy(zero_copy_only=False),
        guarded.fill_null(False).to_numpy(zero_copy_only=False),
        np.nan,
    )
    frame["condition"] = _conditions(frame)
    latest = ~frame.duplicated(["model", *ITEM, *extra], keep="last").to_numpy()
    verdicts = _verdicts(table.column("verdicts"), frame, latest)
    if not latest.all():
        keep = np.flatnonzero(latest)
        renumber = np.full(len(frame), -1, dtype=np.int64)
        renumber[keep] = np.arange(len(keep))
        frame = frame.iloc[keep].reset_index(drop=True)
        verdicts = verdicts.assign(row=renumber[verdicts["row"].to_numpy()])
    return Attempts(frame, verdicts)


def _conditions(frame: pd.DataFrame) -> pd.Series:
    """The condition of each attempt, computed once per distinct variant."""
    parts = ["variant", "paraphrase", "noise_kind", "noise_level"]
    distinct = frame[parts].drop_duplicates()
    names = [
        condition_name(int(p), str(k), float(level))
        for p, k, level in zip(
            distinct["paraphrase"], distinct["noise_kind"], distinct["noise_level"], strict=True
        )
    ]
    lookup = distinct.assign(condition=names)
    merged = frame[parts].merge(lookup, on=parts, how="left", sort=False)
    return merged["condition"].astype("category").set_axis(frame.index)


def _verdicts(column: pa.ChunkedArray, frame: pd.DataFrame, latest: np.ndarray) -> pd.DataFrame:
    """One row per verdict of the latest, judged records, labelled within its own record: the
    validator's name, `name#k` for the k-th verdict of that name in the record (a second
    `regex` of a task becomes `regex#2`; a case's own `contains_all` after the task's one,
    `contains_all#2`). Attempts of one task may run different validators (`cases[].
    validators`), so labels come from each record, not from a position in its task. The work
    is on integer codes: a journal of a million attempts has millions of verdicts.
    """
    array = column.combine_chunks()
    lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(array)
    rows = np.repeat(np.arange(len(frame)), lengths)
    names = pc.dictionary_encode(flat.field("validator"))
    name_codes = names.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    name_values = [str(v) for v in names.dictionary.to_pylist()]
    passed = flat.field("passed").fill_null(False).to_numpy(zero_copy_only=False)
    keep = (latest & frame["judged"].to_numpy())[rows]
    rows, name_codes, passed = rows[keep], name_codes[keep], passed[keep]
    rank = _rank_within_record(rows, name_codes, len(name_values))
    if not rank.any():  # no record repeats a name: each label is its name
        codes, labels = name_codes, name_values
    else:
        pairs, codes = np.unique(name_codes * (int(rank.max()) + 1) + rank, return_inverse=True)
        width = int(rank.max()) + 1
        labels = [
            name_values[p // width]
            if p % width == 0
            else f"{name_values[p // width]}#{p % width + 1}"
            for p in pairs.tolist()
        ]
    categories, order = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    return pd.DataFrame(
        {
            "row": rows,
            "validator": pd.Categorical.from_codes(
                order[codes].astype(np.int64) if len(rows) else np.zeros(0, np.int64),
                categories=pd.Index([str(c) for c in categories]),
            ),
            "passed": passed,
        }
    )


def _rank_within_record(rows: np.ndarray, names: np.ndarray, distinct: int) -> np.ndarray:
    """For each verdict (`rows` ascending, a record's verdicts in its order), how many earlier
    verdicts of the same record have its name: 0 for the first of a name."""
    if len(rows) == 0:
        return np.zeros(0, np.int64)
    key = rows.astype(np.int64) * max(distinct, 1) + names
    order = np.argsort(key, kind="stable")  # runs by record: nearly sorted already
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(ordered)])
    rank = np.empty(len(rows), np.int64)
    rank[order] = np.arange(len(ordered)) - np.repeat(starts, sizes)
    return rank


def attempts_of(records: Iterable[AttemptRecord]) -> Attempts:
    """Frames from records in memory (tests, the Python API)."""
    rows = []
    for record in records:
        row = record.model_dump(include=set(_SCHEMA.names) - {"verdicts"})
        row["verdicts"] = [{"validator": v.validator, "passed": v.passed} for v in record.verdicts]
        rows.append(row)
    return _split(pa.Table.from_pylist(rows, schema=_SCHEMA))


_COSTS = ["cost_usd", "cost_saved_usd", "judge_cost_usd"]


def _costs_are_dollars(table: pa.Table) -> bool:
    """Whether every recorded cost is finite and 0 or more. Arrow reads `NaN` and `-1` as
    numbers; the record model refuses them as damage, naming the line, and no NaN reaches a
    sum of spend."""
    for name in _COSTS:
        values = pc.drop_null(table.column(name))
        if len(values) and not (
            pc.all(pc.is_finite(values)).as_py() and pc.min(values).as_py() >= 0
        ):
            return False
    return True
