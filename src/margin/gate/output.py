"""The gate's verdict as files for CI: a job summary (Markdown) and JUnit XML."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from margin.gate.config import FAIL, INSUFFICIENT, PASS, GateReport

CHANGES_PAGE = "changes.html"
"""What `margin report RUN --baseline BASE` writes into the run (margin.report.changes names it
too; the gate does not import the report, to stay light)."""


def changes_line(summary: Path, run: Path, baseline: Path) -> str:
    """The summary's pointer to the attempts that flipped since the baseline, answer beside
    answer: changes.html in the run, linked relative to the folder `summary` is written in."""
    folder = run if run.is_dir() else run.parent
    link = Path(os.path.relpath(folder / CHANGES_PAGE, summary)).as_posix()
    command = f"margin report {folder} --baseline {baseline}"
    state = "" if (folder / CHANGES_PAGE).exists() else " (not written yet)"
    return (
        f"What flipped since the baseline, pass → fail and fail → pass with both answers side by "
        f"side: [{CHANGES_PAGE}]({link.replace(' ', '%20')}){state}, written by `{command}`."
    )


def gate_markdown(report: GateReport, changes: str | None = None) -> str:
    """The gate's verdict for `$GITHUB_STEP_SUMMARY`; `changes` is the `changes_line` of a gate
    run against a baseline."""
    verdict = {PASS: "passed", FAIL: "failed", INSUFFICIENT: "insufficient evidence"}[
        report.exit_code
    ]
    lines = [f"## margin gate: {verdict}", ""]
    if report.findings:
        lines += [
            "| model | task | condition | baseline | now | difference | p-value | rule |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for f in report.findings:
            p = "" if f.p_value is None else f"{f.p_value:.3g}"
            cells = [f.model, f.task, f.condition, f.baseline, f.now, f.difference, p, f.rule]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [f"- {note}" for note in report.notes]
    if changes is not None:
        lines += ["", changes]
    lines += ["", f"Checked: {', '.join(report.checked)}."]
    return "\n".join(lines) + "\n"


def gate_junit(report: GateReport) -> str:
    """One test case per gated model × task; its findings are its failures (or skips)."""
    root = ET.Element("testsuites", name="margin gate")
    suite = ET.SubElement(root, "testsuite", name="margin gate", tests=str(len(report.checked)))
    failures = skipped = 0
    for checked in report.checked:
        model, task = checked.split(" on ", 1)
        case = ET.SubElement(suite, "testcase", classname=task.replace("/", "."), name=checked)
        mine = [f for f in report.findings if f.model == model and f.task == task]
        hard = [f for f in mine if not f.insufficient]
        if hard:
            failures += 1
            text = "; ".join(f"{f.rule}: {f.baseline} → {f.now} {f.difference}" for f in hard)
            ET.SubElement(case, "failure", message=text, type="gate").text = text
        elif mine:
            skipped += 1
            ET.SubElement(case, "skipped", message="; ".join(f.rule for f in mine))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
