"""A run directory: the resolved config, copies of the suites, the journal, the reports.

Its default name is derived from what decides the attempts' keys (suites, models, seed,
variants), so running the same command again resumes the same run; adding repeats extends it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from margin.config import ModelSpec, RunSettings
from margin.errors import UserError
from margin.journal import JOURNAL_NAME
from margin.lock import LOCK_SUFFIX, lock_path
from margin.suite import Suite

RUN_FILE = "run.json"


def run_identity(suites: list[Suite], models: list[ModelSpec], settings: RunSettings) -> str:
    """A short hash of everything that shapes attempt keys and prompts (not repeats or limits)."""
    parts: dict[str, Any] = {
        "suites": [
            s.model_dump(mode="json") for s in sorted(suites, key=lambda suite: suite.suite)
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


def prepare_run_dir(
    out: Path | None,
    suites: list[Suite],
    models: list[ModelSpec],
    settings: RunSettings,
    reports_root: Path = Path("reports"),
) -> Path:
    """Create (or reopen) the run directory and write its resolved config; returns it."""
    identity = run_identity(suites, models, settings)
    folder = out if out is not None else reports_root / f"run-{identity}"
    run_file = folder / RUN_FILE
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8")).get("identity")
        if previous != identity:
            raise UserError(
                "this folder holds a different run (other suites, models, seed or variants); "
                "choose another --out",
                path=folder,
            )
    folder.mkdir(parents=True, exist_ok=True)
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
    run_file.write_text(json.dumps(resolved, indent=2), encoding="utf-8")
    return folder
