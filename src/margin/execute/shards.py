"""Shards: one plan split over machines by a stable hash of each attempt's key, then merged.

`margin run … --shard i/n` runs the attempts whose key hashes to shard i (1 ≤ i ≤ n) into its
own run directory; any scheduler runs the n commands (a CI matrix, Slurm array jobs, Kubernetes
indexed Jobs). `margin merge DIR… --out DIR` checks that the shards are one run (same identity
and plan), that every shard 1..n is there once, that no attempt is in two shards and none is
missing, and writes one run directory whose journal, statistics and report are those of a
single-machine run of the same plan. A policy execution's tries hash together (the key without
its step), so an execution runs within one shard.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from margin.config import ModelSpec, RunSettings
from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME, AttemptRecord, Journal, latest_records
from margin.journal.rundir import RUN_FILE, read_run_file, write_atomically
from margin.plan import AttemptKey, build_plan
from margin.suite.load import load_suite

Shard = tuple[int, int]
"""(index, count), 1 ≤ index ≤ count."""


def parse_shard(text: str) -> Shard:
    """`2/3` → (2, 3); anything else is a UserError (one line)."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise UserError(f"--shard {text!r}: write i/n with 1 ≤ i ≤ n, e.g. --shard 2/3")
    return int(found.group(1)), int(found.group(2))


def shard_of(key: AttemptKey, count: int) -> int:
    """The shard (1-based) an attempt belongs to: sha256 of its key, policy tries together."""
    text = str(key) if not key.policy else str(key).rsplit("#s", 1)[0]
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % count + 1


def merge(folders: list[Path], out: Path) -> int:
    """Join shard run directories into `out`; returns the number of attempts. Refuses (a
    UserError, one line) shards of different runs, a missing or repeated shard, an attempt
    in two shards, and a planned attempt in none."""
    if not folders:
        raise UserError("merge needs the shard run directories")
    files = []
    for folder in folders:
        run_file = read_run_file(folder)
        if run_file is None:
            raise UserError("not a margin run directory (no run.json)", path=folder)
        files.append(run_file)
    first = files[0]
    for folder, run_file in zip(folders, files, strict=True):
        if run_file["identity"] != first["identity"] or _plan_facts(run_file) != _plan_facts(first):
            raise UserError(
                f"not a shard of the same run as {folders[0]} (other suites, models, seed,"
                " variants or repeats)",
                path=folder,
            )
    shards = [f.get("shard") for f in files]
    if any(s is None for s in shards):
        folder = folders[shards.index(None)]
        raise UserError("not a shard (run without --shard)", path=folder)
    counts = {s["count"] for s in shards if s}
    if len(counts) != 1:
        raise UserError(f"shards of different splits: /{', /'.join(map(str, sorted(counts)))}")
    count = counts.pop()
    indices = [int(s["index"]) for s in shards if s]
    twice = sorted({i for i in indices if indices.count(i) > 1})
    if twice:
        raise UserError(f"shard {twice[0]}/{count} is given twice")
    missing = sorted(set(range(1, count + 1)) - set(indices))
    if missing:
        raise UserError(f"shard {missing[0]}/{count} is missing ({len(indices)} of {count} given)")
    planned = _planned_keys(folders[0], first)
    records: dict[str, AttemptRecord] = {}
    owner: dict[str, Path] = {}
    for folder, run_file in zip(folders, files, strict=True):
        journal = folder / str(run_file.get("journal") or JOURNAL_NAME)
        for key, record in latest_records(journal).items():
            if key in records:
                raise UserError(f"attempt {key} is in two shards ({owner[key]} and {folder})")
            records[key], owner[key] = record, folder
    bare = {k for k, r in records.items() if r.policy is None}
    lacking = sorted(planned - bare)
    if lacking:
        raise UserError(
            f"{len(lacking)} planned attempts are in no shard (first: {lacking[0]}); run the"
            " unfinished shard again to finish it"
        )
    extra = sorted(bare - planned)
    if extra:
        raise UserError(f"attempt {extra[0]} is not in the run's plan", path=owner[extra[0]])
    _write(folders[0], first, out, records)
    return len(records)


def _plan_facts(run_file: dict[str, Any]) -> tuple[object, ...]:
    settings = run_file.get("settings") or {}
    keys = ("repeats", "seed", "paraphrases", "noise", "levels", "policies", "run_policies")
    return tuple(json.dumps(settings.get(k), sort_keys=True) for k in keys)


def _planned_keys(folder: Path, run_file: dict[str, Any]) -> set[str]:
    settings = RunSettings.model_validate(run_file.get("settings") or {})
    models = [ModelSpec.model_validate(m) for m in run_file.get("models") or []]
    suites = [
        load_suite(folder / "suites" / f"{name}.yaml") for name in run_file.get("suites") or {}
    ]
    if settings.adaptive:
        raise UserError("an adaptive run cannot be sharded or merged", path=folder)
    return {str(a.key) for a in build_plan(suites, models, settings).attempts}


def _write(
    source: Path, run_file: dict[str, Any], out: Path, records: dict[str, AttemptRecord]
) -> None:
    """The merged run directory: the shards' run file (without the shard), suites, journal."""
    out.mkdir(parents=True, exist_ok=True)
    previous = read_run_file(out)
    if previous is not None and previous["identity"] != run_file["identity"]:
        raise UserError("this folder holds a different run; choose another --out", path=out)
    journal = out / JOURNAL_NAME
    if journal.exists():
        journal.unlink()  # a merge is rewritten whole: the shards are the source of truth
    shutil.copytree(source / "suites", out / "suites", dirs_exist_ok=True)
    merged = {k: v for k, v in run_file.items() if k != "shard"}
    merged["journal"] = JOURNAL_NAME
    merged["merged_from"] = run_file["shard"]["count"]
    write_atomically(out / RUN_FILE, json.dumps(merged, indent=2))
    for name in ("judges.json",):
        if (source / name).exists():
            shutil.copyfile(source / name, out / name)
    with Journal(journal) as sink:
        for key in sorted(records):
            sink.append(records[key])
