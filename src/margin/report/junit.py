"""junit.xml: one test case per model × task — crossed (pass), fell short (failure) or
undecided (skipped, with how many new cases would settle it: `more_cases_text`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from margin.results.document import Results
from margin.results.rows import TaskRow
from margin.stats.numbers import more_cases_text, rate_with_interval


def junit_xml(results: Results) -> str:
    """The JUnit XML document."""
    by_suite: dict[str, list[TaskRow]] = defaultdict(list)
    for row in results.tasks:
        by_suite[row.suite].append(row)
    root = ET.Element("testsuites", name="margin", tests=str(len(results.tasks)))
    for suite, rows in by_suite.items():
        failures = sum(r.verdict == "falls short" for r in rows)
        skipped = sum(r.verdict == "undecided" for r in rows)
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite,
            tests=str(len(rows)),
            failures=str(failures),
            skipped=str(skipped),
            errors="0",
        )
        for row in rows:
            case = ET.SubElement(
                element,
                "testcase",
                classname=f"{row.suite}.{row.task}",
                name=f"{row.model} on {row.suite}/{row.task}",
                time=f"{(row.latency_p50 or 0) * row.attempts:.3f}",
            )
            evidence = rate_with_interval(row.passes, row.n, row.low, row.high)
            target = f"target {row.target:g}" if row.target is not None else "no target"
            if row.verdict == "falls short":
                ET.SubElement(
                    case,
                    "failure",
                    message=f"falls short: {evidence} < {target}",
                    type="falls short",
                ).text = (
                    f"{row.model} falls short of {target} on {row.suite}/{row.task}: {evidence}"
                )
            elif row.verdict == "undecided":
                more = more_cases_text(row.more_cases)
                ET.SubElement(
                    case, "skipped", message=f"undecided: {evidence} straddles {target}; {more}"
                )
            ET.SubElement(
                case, "system-out"
            ).text = f"{evidence}; {row.verdict} ({target}); {row.infra_errors} infra errors"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
