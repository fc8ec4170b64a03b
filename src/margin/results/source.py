"""What a results.json was computed from, so a later command can tell it is still true.

The score stage records the sha256 and size of every file scoring reads — the journal, run.json,
the suite copies, judges.json — and margin's version. `margin report` renders from a results.json
whose record matches the files now, instead of scoring the journal again.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from margin.errors import UserError
from margin.journal.records import JOURNAL_NAME
from margin.journal.rundir import RUN_FILE, read_run_file
from margin.judges.trust import JUDGES_NAME
from margin.results.document import RESULTS_NAME, Results, SourceFacts, read_results

CHUNK = 1 << 20


def file_digest(path: Path) -> tuple[int, str] | None:
    """Size and sha256 of `path`, None when it is missing."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def source_of(folder: Path) -> SourceFacts | None:
    """The record of the run directory `folder`'s inputs as they are now (None: not a run)."""
    run_file = read_run_file(folder)
    if run_file is None:
        return None
    names = [RUN_FILE, str(run_file.get("journal") or JOURNAL_NAME), JUDGES_NAME]
    names += [f"suites/{name}.yaml" for name in run_file.get("suites") or {}]
    files: dict[str, str | None] = {}
    for name in names:
        found = file_digest(folder / name)
        files[name] = None if found is None else f"{found[0]}:{found[1]}"
    return SourceFacts(margin_version=_margin_version(), files=files)


def current_results(folder: Path, target: Path) -> Results | None:
    """`target`'s results.json when it records being computed from `folder`'s files as they are
    now (and by this margin); None when it is missing, unreadable, unrecorded or stale."""
    if not (target / RESULTS_NAME).is_file():
        return None
    try:
        results = read_results(target / RESULTS_NAME)
    except UserError:
        return None  # an unreadable results.json is scored again, as before
    recorded = results.run.source
    if recorded is None or recorded != source_of(folder):
        return None
    return results


def _margin_version() -> str:
    try:
        return version("margin")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "unknown"
