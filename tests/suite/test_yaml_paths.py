"""libyaml's parser (the fast path) and the pure-Python one read every file alike: the same data
and lines for good files, the same one-line error for every broken or hostile one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from margin.errors import UserError
from margin.suite import parser
from margin.suite.source import read_yaml
from tests.cli.test_broken_inputs import BROKEN, BROKEN_CONFIGS
from tests.conftest import ROOT

needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")


def outcome(path: Path) -> tuple[object, ...]:
    try:
        found = read_yaml(path)
    except UserError as exc:
        return ("error", exc.one_line())
    return ("read", found.data, found.lines)


def both_paths(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[object, ...], ...]:
    fast = outcome(path)
    with monkeypatch.context() as patch:
        patch.setattr(parser, "_CBoundedLoader", None)
        pure = outcome(path)
    return fast, pure


CORPUS = [(name, content) for name, content, *_ in [*BROKEN, *BROKEN_CONFIGS]]
GOOD = sorted(
    [
        *ROOT.glob("suites/*.yaml"),
        *ROOT.glob("configs/*.yaml"),
        *ROOT.glob("tests/fixtures/**/*.yaml"),
    ]
)


@needs_libyaml
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "content"), CORPUS, ids=[c[0] for c in CORPUS])
def test_a_broken_file_reads_alike_on_both_paths(
    write, name: str, content: str | bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pure = both_paths(write(f"{name}.yaml", content), monkeypatch)
    assert fast == pure


@needs_libyaml
@pytest.mark.parametrize("path", GOOD, ids=[str(p.relative_to(ROOT)) for p in GOOD])
def test_a_good_file_reads_alike_on_both_paths(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, pure = both_paths(path, monkeypatch)
    assert fast[0] == "read", fast
    assert fast == pure


@needs_libyaml
@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("syntax", "a: [1, 2\nb: 3\n", "YAML syntax error"),
        ("tab-indent", "a:\n\t- 1\n", "YAML syntax error"),
        ("two-documents", "a: 1\n---\nb: 2\n", "but found another document"),
        ("control-in-comment", "a: 1  # \x07\n", "control character U+0007"),
        ("deep", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 40 levels"),
        ("many-values", "a: [" + "1," * 150_000 + "1]\n", "more than 100,000 values"),
        (
            "alias-bomb",
            "a: &a [1, 1]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefghij", "bcdefghijk", strict=True)
            ),
            "expands to more than 200,000 values",
        ),
    ],
)
def test_libyaml_errors_are_worded_by_the_python_parser(
    write, name: str, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, pure = both_paths(write(f"{name}.yaml", text), monkeypatch)
    assert fast == pure
    assert fast[0] == "error" and message in str(fast[1]), fast


@needs_libyaml
def test_a_good_file_is_composed_by_libyaml(write, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken, not silently skipped: the pure loader is never built."""

    def refuse(text: str) -> None:
        raise AssertionError("the pure-Python loader ran")

    monkeypatch.setattr(parser, "_BoundedLoader", refuse)
    found = read_yaml(write("ok.yaml", "a:\n  - 1\n  - {b: x}\n"))
    assert found.data == {"a": [1, {"b": "x"}]}
    assert found.lines[("a", 1, "b")] == 3
