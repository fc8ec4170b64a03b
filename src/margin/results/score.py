"""The score stage: a run directory in, results.json out.

The journal is scored (`margin.stats`), ranked and recommended on (`margin.decide`), and built
into the document (`margin.results.build`); `score_run` writes it atomically. Every caller that
needs a run scored comes here — `margin score --format json`, `margin report`, `margin merge`,
the end of `margin run`, the pytest plugin, and the gate for a run without results.json — and
reads the scores through results.json, never the scorer's frames.
"""

from __future__ import annotations

from pathlib import Path

from margin.decide.scores import Scores
from margin.decide.scores import score_run as score_journal
from margin.decide.summary import recommendation_lines
from margin.journal.rundir import make_folder
from margin.results.build import build_results
from margin.results.document import Results, read_results, write_results
from margin.results.source import source_of


def results_of(folder: Path, scores: Scores | None = None) -> Results:
    """The results of the run directory `folder`, scored (unless `scores` already did) and
    built, not written; a folder that is not a run, or a damaged journal, is a UserError.

    The inputs are recorded (`run.source`) as read before scoring: a journal that grows
    meanwhile makes the document stale, never wrongly current."""
    source = source_of(folder)
    scores = scores if scores is not None else score_journal(folder)
    results = build_results(folder, scores, recommendation_lines(scores))
    return results.model_copy(update={"run": results.run.model_copy(update={"source": source})})


def score_run(folder: Path, out: Path | None = None, scores: Scores | None = None) -> Results:
    """Score the run directory `folder` (unless `scores` already did), write results.json into
    `out` (default: the run; made if missing) and return the document as written.

    Scored before any folder is made: a damaged journal leaves nothing behind."""
    results = results_of(folder, scores)
    target = out or folder
    make_folder(target)
    return read_results(write_results(folder, results, target))
