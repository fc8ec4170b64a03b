"""A run directory: the resolved config, copies of the suites, the journal, the reports.

Its default name is derived from what decides the attempts' keys (suites, models, seed,
variants), so running the same command again resumes the same run; adding repeats extends it.
A run directory has one writer at a time: `margin run` holds an exclusive lock on it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pydantic_core
from pydantic import ValidationError

from margin.config import ModelSpec, RunSettings
from margin.errors import UserError, invalid_data, not_utf8
from margin.journal.records import JOURNAL_NAME
from margin.suite.lock import LOCK_SUFFIX, lock_path
from margin.suite.tasks import Suite

RUN_FILE = "run.json"
_SCORING_ONLY: Any = {"target": True, "tasks": {"__all__": {"target", "max_p95_s"}}}
LOCK_FILE = ".margin-run.lock"


def run_identity(suites: list[Suite], models: list[ModelSpec], settings: RunSettings) -> str:
    """A short hash of everything that shapes attempt keys and prompts (not repeats or limits)."""
    parts: dict[str, Any] = {
        "suites": [
            # Targets and latency budgets judge the attempts but do not shape them: changing
            # one re-scores the same run instead of starting another.
            s.model_dump(mode="json", exclude=_SCORING_ONLY)
            for s in sorted(suites, key=lambda suite: suite.suite)
        ],
        "models": [
            m.model_dump(mode="json", include={"name", "model", "api_base", "sampling"})
            for m in models
        ],
        "seed": settings.seed,
        "paraphrases": settings.paraphrases,
        "levels": settings.levels,
    }
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_run_dir(
    suites: list[Suite],
    models: list[ModelSpec],
    settings: RunSettings,
    reports_root: Path = Path("reports"),
    shard: tuple[int, int] | None = None,
) -> Path:
    """`reports/run-<identity>` (`…-shard-2of3` for a shard)."""
    name = f"run-{run_identity(suites, models, settings)}"
    if shard is not None:
        name += f"-shard-{shard[0]}of{shard[1]}"
    return reports_root / name


@contextmanager
def run_dir_lock(folder: Path) -> Iterator[None]:
    """Hold the run directory for one writer; a second writer is one line, exit 2."""
    _make_folder(folder)
    path = folder / LOCK_FILE
    try:
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write here: {exc.strerror or exc}", path=folder) from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(
                f"another margin run ({holder}) is writing to this run directory; wait for it "
                "to finish or choose another --out",
                path=folder,
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


def _make_folder(folder: Path) -> None:
    make_folder(folder, "--out names a file, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError("cannot write to the run directory (permission denied)", path=folder)


def make_folder(folder: Path, not_a_folder: str = "a file, not a folder") -> None:
    """Create `folder` (and its parents) unless it is there; a file in its place or a folder
    that cannot be made is a UserError naming it."""
    if folder.exists() and not folder.is_dir():
        raise UserError(not_a_folder, path=folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder: {exc.strerror or exc}", path=folder) from None


def read_json(path: Path) -> Any:
    """The JSON document in `path`. A file that cannot be read, is not UTF-8, is not JSON, or
    nests deeper than pydantic's parser allows (a few hundred levels, where `json.loads` would
    die of a RecursionError) is a UserError naming the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, raw, exc) from None
    try:
        return pydantic_core.from_json(text)
    except ValueError as exc:
        found = _JSON_PROBLEM.fullmatch(str(exc))
        if found is None:
            raise UserError(f"not JSON: {exc}", path=path) from None
        problem = found["problem"]
        if problem == "recursion limit exceeded":
            problem = "nested too deep"  # json.loads would hit a RecursionError here
        raise UserError(
            f"not JSON: {problem} (column {found['column']})", path=path, line=int(found["line"])
        ) from None


_JSON_PROBLEM = re.compile(r"(?P<problem>.*) at line (?P<line>\d+) column (?P<column>\d+)")
"""How pydantic's JSON parser says where a document goes wrong."""


def read_run_file(folder: Path) -> dict[str, Any] | None:
    """The run directory's `run.json`, None when absent; a damaged one is a UserError."""
    run_file = folder / RUN_FILE
    if not run_file.exists():
        return None
    try:
        data = read_json(run_file)
    except UserError as exc:
        raise UserError(
            f"damaged ({exc.message}); move it away to start this run afresh, or choose "
            "another --out",
            path=run_file,
            line=exc.line,
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("identity"), str):
        raise UserError("not a margin run file (no identity)", path=run_file)
    _check_run_file(data, run_file)
    return data


def _check_run_file(data: dict[str, Any], path: Path) -> None:
    """The models and settings a run file holds fit their models (a hand-edited or damaged file
    is one line naming the field, not a traceback from whichever stage reads it first)."""
    models = data.get("models") or []
    try:
        if not isinstance(models, list):
            ModelSpec.model_validate(models)  # names what is wrong with it
        for spec in models:
            ModelSpec.model_validate(spec)
        RunSettings.model_validate(data.get("settings") or {})
    except ValidationError as exc:
        raise invalid_data(exc, "not a margin run file", path) from None


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader (or a kill) sees the old file or the new, never half;
    nothing is left behind when it fails (a folder in the way, a full disk: a UserError)."""
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as a plain open() would: reports are for sharing
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", path=path) from None
    finally:
        if temporary is not None:  # an error or an interrupt: the temporary file goes too
            temporary.unlink(missing_ok=True)


def prepare_run_dir(
    folder: Path,
    suites: list[Suite],
    models: list[ModelSpec],
    settings: RunSettings,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Create (or reopen) the run directory `folder` and write its resolved config; returns it.

    Call it while holding `run_dir_lock` on the folder (which has made it).
    """
    identity = run_identity(suites, models, settings)
    previous = read_run_file(folder)
    if previous is not None and previous["identity"] != identity:
        raise UserError(
            "this folder holds a different run (other suites, models, seed or variants); "
            "choose another --out",
            path=folder,
        )
    before = None if previous is None else previous.get("shard")
    now = None if shard is None else {"index": shard[0], "count": shard[1]}
    if previous is not None and before != now:

        def name(s: dict[str, int] | None) -> str:
            return "the whole run" if s is None else f"shard {s['index']}/{s['count']}"

        raise UserError(
            f"this folder holds {name(before)}, not {name(now)}; choose another --out",
            path=folder,
        )
    copies = folder / "suites"
    copies.mkdir(exist_ok=True)
    for suite in suites:
        if suite.path is not None:
            shutil.copyfile(suite.path, copies / f"{suite.suite}.yaml")
            lock = lock_path(suite.path)
            if lock.exists():
                shutil.copyfile(lock, copies / f"{suite.suite}{LOCK_SUFFIX}")
    resolved = {
        "identity": identity,
        "margin_version": version("margin"),
        "written_at": datetime.now(UTC).isoformat(),
        "suites": {s.suite: str(s.path) if s.path else None for s in suites},
        # api_key stays a ${VAR} reference: the key itself is never written.
        "models": [m.model_dump(mode="json") for m in models],
        "settings": settings.model_dump(mode="json"),
        "journal": JOURNAL_NAME,
    }
    if now is not None:
        resolved["shard"] = now
    write_atomically(folder / RUN_FILE, json.dumps(resolved, indent=2))
    return folder
