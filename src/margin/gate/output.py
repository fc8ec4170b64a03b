"""The gate's verdict as files for CI: a job summary (Markdown) and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from margin.gate.config import FAIL, INSUFFICIENT, PASS, GateReport


def gate_markdown(report: GateReport) -> str:
    """The gate's verdict for `$GITHUB_STEP_SUMMARY`."""
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
