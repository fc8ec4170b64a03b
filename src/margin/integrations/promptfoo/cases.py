"""promptfoo tests as margin cases: tests read from the config, CSV, YAML or JSONL files, their
vars expanded and their assertions converted — `defaultTest`'s into the validators every case
shares (the task's), each test's own into its cases' validators (`cases[].validators`)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from margin.integrations.promptfoo.assertions import (
    Check,
    assertion_from_string,
    convert_assertion,
    flat_assertions,
)
from margin.integrations.promptfoo.common import Loss, short, slug, unique
from margin.integrations.promptfoo.files import (
    expand,
    file_ref,
    load_vars,
    render_value,
)
from margin.suite.templates import TemplateProblem


@dataclass(frozen=True)
class DefaultTest:
    """promptfoo's `defaultTest`: vars and assertions every test starts from."""

    vars: dict[str, Any] = field(default_factory=dict)
    asserts: list[Any] = field(default_factory=list)


@dataclass
class Converted:
    """The config's tests as cases: the validators they all share, and the cases (each with
    its vars, the values its checks compare with in `expect`, and its own validators)."""

    shared: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    p95: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)


def read_default_test(default: Any, lost: list[Loss], changed: list[Loss]) -> DefaultTest:
    """The config's `defaultTest` (a file:// one is not read: a loss)."""
    if isinstance(default, str):
        lost.append(Loss("defaultTest", default, "a file:// defaultTest is not read"))
        default = {}
    found = DefaultTest(dict(default.get("vars") or {}), list(default.get("assert") or []))
    if (default.get("options") or {}).get("provider"):
        changed.append(
            Loss(
                "defaultTest.options.provider",
                short(default["options"]["provider"]),
                "model-graded checks use run.judge.model (set it in the models config)",
            )
        )
    return found


def convert_tests(
    tests: list[dict[str, Any]],
    default: DefaultTest,
    base: Path,
    lost: list[Loss],
    changed: list[Loss],
) -> Converted:
    """Each test's cases: `defaultTest`'s checks are the validators every case shares, the
    test's own its cases' (when every case has the same ones, they are shared too); what does
    not convert is a loss, what converts with a shifted meaning a change."""
    found = Converted()
    case_ids: set[str] = set()
    shared: list[dict[str, Any]] | None = None
    for index, test in enumerate(tests):
        where = f"tests[{index}]" + (f" ({test['description']})" if test.get("description") else "")
        _test_notes(test, where, lost, changed)
        converted = _convert_test(test, where, default, base, lost, changed)
        if converted is None:
            continue
        common, own, expanded = converted
        found.p95.extend(c.p95_s for c in [*common, *own] if c.p95_s is not None)
        found.cost.extend(c.cost for c in [*common, *own] if c.cost is not None)
        common, own = [c for c in common if c.entry], [c for c in own if c.entry]
        if not common and not own:
            lost.append(
                Loss(
                    where,
                    "the test",
                    "no assertion converts to a validator: a margin case "
                    "needs at least one check, so the test is not imported",
                )
            )
            continue
        entries = _entries([*common, *own])
        shared = entries[: len(common)] if shared is None else shared
        stem = slug(str(test.get("description") or ""), f"test-{index + 1}")
        for case in _cases(expanded, [*common, *own], stem, where, case_ids, lost):
            if own:
                case["validators"] = entries[len(common) :]
            found.cases.append(case)
    found.shared = shared or []
    _share_common(found)
    return found


def _entries(checks: list[Check]) -> list[dict[str, Any]]:
    """The checks' validators, each reading its value from `expect` key `v1`, `v2`, …"""
    return [
        json.loads(json.dumps(check.entry).replace("{key}", f"v{i + 1}"))
        for i, check in enumerate(checks)
    ]


def _share_common(found: Converted) -> None:
    """When every case has the same validators of its own, they are the task's."""
    owns = [case.get("validators") for case in found.cases]
    if found.cases and owns[0] and all(own == owns[0] for own in owns):
        found.shared = [*found.shared, *owns[0]]
        for case in found.cases:
            del case["validators"]


def _convert_test(
    test: Mapping[str, Any],
    where: str,
    default: DefaultTest,
    base: Path,
    lost: list[Loss],
    changed: list[Loss],
) -> tuple[list[Check], list[Check], list[dict[str, Any]]] | None:
    """The checks of `defaultTest` and of the test, and its vars expanded; None (a loss) when
    its vars do not load."""
    try:
        variables = load_vars({**default.vars, **(test.get("vars") or {})}, base)
        expanded = expand(variables)
    except (ValueError, OSError) as exc:
        lost.append(Loss(where, "vars", f"{exc}: the test is not imported"))
        return None
    common = _checks(flat_assertions(default.asserts, where, lost), where, base, lost, changed)
    own = _checks(
        flat_assertions(list(test.get("assert") or []), where, lost), where, base, lost, changed
    )
    return common, own, expanded


def _checks(
    flat: list[dict[str, Any]], where: str, base: Path, lost: list[Loss], changed: list[Loss]
) -> list[Check]:
    checks: list[Check] = []
    for item in flat:
        kind = str(item.get("type", "?"))
        try:
            check = convert_assertion(item, base)
        except (ValueError, OSError, re.error, yaml.YAMLError) as exc:
            lost.append(Loss(where, kind, str(exc)))
            continue
        if check.note:
            changed.append(Loss(where, kind, check.note))
        checks.append(check)
    return checks


def _cases(
    expanded: list[dict[str, Any]],
    validating: list[Check],
    stem: str,
    where: str,
    case_ids: set[str],
    lost: list[Loss],
) -> list[dict[str, Any]]:
    """One case per combination of the test's vars, with the values its checks compare with
    in `expect`; a combination whose values do not render is a loss."""
    cases = []
    for number, combo in enumerate(expanded):
        try:
            values = [render_value(c.expect, combo) for c in validating]
        except (TemplateProblem, ValueError) as exc:  # the case cannot be checked
            lost.append(Loss(where, "assertion value", f"does not render with the vars: {exc}"))
            continue
        case_id = unique(stem if len(expanded) == 1 else f"{stem}-{number + 1}", case_ids)
        case: dict[str, Any] = {"id": case_id, "vars": combo}
        expect = {
            f"v{i + 1}": value
            for i, (check, value) in enumerate(zip(validating, values, strict=True))
            if check.expect is not None
        }
        if expect:
            case["expect"] = expect
        cases.append(case)
    return cases


def _test_notes(test: Mapping[str, Any], where: str, lost: list[Loss], changed: list[Loss]) -> None:
    """What a test carries beside its assertions that margin drops or reads differently."""
    options = test.get("options") or {}
    for option in ("transform", "postprocess"):
        if options.get(option):
            lost.append(
                Loss(
                    where,
                    f"options.{option}",
                    "transforms the output (JavaScript): "
                    "the checks see the answer as the model gave it",
                )
            )
    if test.get("threshold") is not None:
        changed.append(
            Loss(
                where,
                f"threshold {test['threshold']}",
                "promptfoo passes the test when the weighted assertion score reaches "
                "it; margin passes an attempt when every validator passes (partial "
                "credit is reported beside it)",
            )
        )
    if test.get("providers"):
        changed.append(Loss(where, "providers", "runs on every model of the config"))


def load_tests(raw: Any, base: Path, lost: list[Loss]) -> list[dict[str, Any]]:
    """promptfoo's `tests`: a list (of tests or file references) or one file reference."""
    items = raw if isinstance(raw, list) else [raw]
    tests: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            tests.append(item)
            continue
        where = f"tests[{index}]" if isinstance(raw, list) else "tests"
        if not isinstance(item, str) or not item.startswith("file://"):
            lost.append(Loss(where, short(item), "not a test or a file:// reference"))
            continue
        if any(ch in item for ch in "*?["):
            lost.append(Loss(where, item, "glob patterns are not expanded: list the files"))
            continue
        try:
            path = file_ref(item, base)
        except ValueError as exc:
            lost.append(Loss(where, item, str(exc)))
            continue
        assert path is not None
        suffix = path.suffix.lower()
        if suffix == ".csv":
            tests.extend(_csv_tests(path, lost))
        elif suffix in (".yaml", ".yml", ".json"):
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
            tests.extend(
                t for t in (loaded if isinstance(loaded, list) else [loaded]) if isinstance(t, dict)
            )
        elif suffix == ".jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            tests.extend(json.loads(line) for line in lines if line.strip())
        else:
            lost.append(Loss(where, item, f"a {suffix} test file is code (a generator), not data"))
    return tests


def _csv_tests(path: Path, lost: list[Loss]) -> list[dict[str, Any]]:
    """Tests from a CSV: columns are vars, `__expected…` cells assertions, `__description`."""
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    tests = []
    skipped: set[str] = set()
    for row in reader:
        test: dict[str, Any] = {"vars": {}, "assert": []}
        for column, cell in row.items():
            if column is None or cell is None:
                continue
            if column.startswith("__expected"):
                if cell.strip():
                    test["assert"].append(assertion_from_string(cell.strip()))
            elif column == "__description":
                test["description"] = cell
            elif column.startswith("__metadata"):
                continue
            elif column.startswith("__"):
                skipped.add(column)
            else:
                test["vars"][column] = cell
        tests.append(test)
    for column in sorted(skipped):
        lost.append(
            Loss(path.name, f"column {column}", "a promptfoo option column margin does not use")
        )
    return tests
