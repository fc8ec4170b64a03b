"""A corpus of broken suites and configs: each gives one line naming the file (and line where
YAML knows it), exits 2, prints no traceback and does not hang."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

VALID = """\
suite: s
target: 0.9
tasks:
  - id: t
    prompt: "Title for {{ complaint }}"
    cases:
      - id: c1
        vars: {complaint: "order 1"}
        expect: {order: "1"}
    validators:
      - max_words: 12
      - contains_all: {from_expect: order}
"""


LOOP = (
    "{% for i in range(n) %}{% for j in range(n) %}{% for k in range(n) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
"""With n = 100,000 (the sandbox's largest range): 10¹⁵ loop steps, years at the 2.5 million a
second measured here, and still years on a machine a hundred times faster."""

BIG = "9" * 5000
"""An integer longer than Python's 4,300-digit limit for int() of a decimal string."""


def mutate(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


# (id, content, substring of the message, line or None)
BROKEN: list[tuple[str, str | bytes, str, int | None]] = [
    ("unknown-top-key", VALID + "colour: red\n", "unknown key 'colour'", 13),
    (
        "unknown-task-key",
        mutate("    prompt:", "    promt: x\n    prompt:"),
        "did you mean 'prompt'",
        5,
    ),
    (
        "unknown-case-key",
        mutate("        expect:", "        expected: {}\n        expect:"),
        "unknown key 'expected'",
        9,
    ),
    ("wrong-type-target", mutate("target: 0.9", "target: high"), "valid number", 2),
    ("target-out-of-range", mutate("target: 0.9", "target: 1.5"), "less than or equal to 1", 2),
    ("tasks-not-a-list", "suite: s\ntarget: 0.9\ntasks: {a: 1}\n", "valid list", 3),
    (
        "missing-prompt",
        mutate('    prompt: "Title for {{ complaint }}"\n', ""),
        "missing required key 'prompt'",
        4,
    ),
    (
        "missing-template-variable",
        mutate("{{ complaint }}", "{{ complaint }} {{ customer }}"),
        "{{ customer }}",
        None,
    ),
    ("template-syntax", mutate("{{ complaint }}", "{{ complaint "), "template syntax error", 5),
    (
        "template-escape-class",
        mutate("{{ complaint }}", "{{ complaint.__class__.__mro__ }}"),
        "unsafe template",
        5,
    ),
    (
        "template-escape-globals",
        mutate("{{ complaint }}", "{{ complaint }}{{ cycler.__init__.__globals__.os }}"),
        "unsafe template",
        5,
    ),
    (
        "template-loop-bomb",
        mutate(
            "{{ complaint }}",
            "{{ complaint }}" + LOOP.replace("range(n)", "range(100000)"),
        ),
        "longer than",
        5,
    ),
    ("bad-regex", mutate("      - max_words: 12", "      - regex: '(unclosed'"), "bad regex", 11),
    ("unknown-validator", mutate("max_words: 12", "max_word: 12"), "did you mean 'max_words'", 11),
    ("validator-wrong-type", mutate("max_words: 12", "max_words: many"), "valid integer", 11),
    (
        "validator-unknown-option",
        mutate("max_words: 12", "max_words: {max: 3, min: 1}"),
        "unknown option 'min'",
        11,
    ),
    (
        "validator-two-keys",
        mutate("      - max_words: 12", "      - {max_words: 12, single_line: true}"),
        "one key",
        11,
    ),
    (
        "expect-key-missing",
        mutate('expect: {order: "1"}', 'expect: {ordr: "1"}'),
        "no expect.order",
        7,
    ),
    ("duplicate-task-id", VALID + VALID.split("tasks:\n", 1)[1], "duplicate task id 't'", 13),
    (
        "duplicate-case-id",
        mutate(
            "    validators:",
            "      - id: c1\n        vars: {complaint: x}\n"
            "        expect: {order: x}\n    validators:",
        ),
        "duplicate case id 'c1'",
        10,
    ),
    (
        "empty-cases",
        "suite: s\ntarget: 0.9\ntasks:\n  - id: t\n    prompt: p\n    cases: []\n"
        "    validators: [json]\n",
        "at least 1 item",
        6,
    ),
    (
        "empty-validators",
        mutate(
            "      - max_words: 12\n      - contains_all: {from_expect: order}\n", "      []\n"
        ).replace("    validators:\n      []", "    validators: []"),
        "at least 1 item",
        10,
    ),
    (
        "yaml-syntax",
        mutate('    prompt: "Title for {{ complaint }}"', '    prompt: "Title for'),
        "YAML syntax error",
        None,
    ),
    ("yaml-bad-indent", "suite: s\ntarget: 0.9\n  tasks: []\n", "YAML syntax error", 3),
    ("non-utf8", VALID.encode() + b"# caf\xe9\n", "not UTF-8", 13),
    (
        "duplicate-yaml-key",
        mutate("target: 0.9", "target: 0.9\ntarget: 0.8"),
        "duplicate key 'target'",
        3,
    ),
    ("empty-file", "", "file is empty", 1),
    ("top-level-list", "- a\n- b\n", "a suite is a mapping", 1),
    (
        "choice-label-unknown",
        "suite: s\ntarget: 0.9\ntasks:\n  - id: t\n    prompt: p\n    cases:\n"
        "      - {id: c, expect: {q: sales}}\n    validators:\n"
        "      - choice: {labels: [billing, shipping], from_expect: q}\n",
        "'sales' is not one of",
        7,
    ),
    (
        "paraphrase-drops-variable",
        mutate("    cases:", '    paraphrases: ["Just a title"]\n    cases:'),
        "paraphrase drops {{ complaint }}",
        6,
    ),
    (
        "bad-json-schema",
        mutate("      - max_words: 12", "      - json_schema: {type: 12}"),
        "not a valid JSON Schema",
        11,
    ),
    ("bad-id", mutate("  - id: t", "  - id: my task!"), "should match pattern", 4),
    (
        "number-expect-not-number",
        mutate("      - max_words: 12", "      - number_equals: {from_expect: order}"),
        "not a number",
        7,
    ),
    (
        "noise-share-above-one",
        mutate("    cases:", "    perturb: {typos: [0.1, 1.5]}\n    cases:"),
        "typos levels are shares of words, between 0 and 1",
        6,
    ),
    (
        "noise-unknown-kind",
        mutate("    cases:", "    perturb: {typo: [0.1]}\n    cases:"),
        "did you mean 'typos'",
        6,
    ),
    (
        "noise-count-not-whole",
        mutate("    cases:", "    perturb: {distractors: [1.5]}\n    cases:"),
        "distractors levels are whole numbers",
        6,
    ),
    ("huge-file", "suite: s\n" + "# padding\n" * 300_000, "limit is", None),
    (
        "deep-nesting",
        "suite: s\ntarget: 0.9\ntasks: " + "[" * 5000 + "]" * 5000 + "\n",
        "nested deeper",
        None,
    ),
    (
        "yaml-python-tag",
        mutate("suite: s", 'suite: !!python/object/apply:os.system ["echo owned"]'),
        "YAML tag !!python/object/apply:os.system is not allowed",
        1,
    ),
    ("yaml-binary-tag", VALID + "description: !!binary aGVsbG8=\n", "YAML tag !!binary", 13),
    ("yaml-custom-tag", VALID + "description: !include other.yaml\n", "YAML tag !include", 13),
    (
        "flow-list-bomb",
        "suite: s\ntarget: 0.9\ntasks: [" + "1," * 150_000 + "1]\n",
        "more than 100,000 values",
        3,
    ),
    (
        "loop-bomb-in-every-case",
        mutate("{{ complaint }}", "{{ complaint }}" + LOOP)
        .replace('"order 1"}', '"order 1", n: 100000}')
        .replace(
            "    validators:",
            "".join(
                f"      - {{id: s{i}, vars: {{complaint: x{i}, n: 100000}}, expect: {{order: x}}}}\n"
                for i in range(16)
            )
            + "    validators:",
        ),
        "longer than",
        5,
    ),
    (
        "string-bomb",
        mutate("{{ complaint }}", "{{ complaint }}{{ 'x' * 1000000000 }}"),
        "would build more than 1,000,000 characters",
        5,
    ),
    (
        "format-width-bomb",
        mutate("{{ complaint }}", "{{ complaint }}{{ '{:>999999999}'.format(complaint) }}"),
        "a format width would build more than",
        5,
    ),
    (
        "replace-bomb",
        mutate("{{ complaint }}", "{{ complaint }}{{ ('x' * 999999)|replace('', 'y' * 999) }}"),
        "`replace` would build more than",
        5,
    ),
    (
        "power-bomb",
        mutate("{{ complaint }}", "{{ complaint }}{{ 7 ** 99999999 }}"),
        "would build a huge number",
        5,
    ),
    (
        "json-schema-file-ref",
        mutate("      - max_words: 12", "      - json_schema: {$ref: 'file:///etc/passwd'}"),
        "points outside the schema",
        11,
    ),
    (
        "json-schema-url-ref",
        mutate(
            "      - max_words: 12",
            "      - json_schema: {properties: {a: {$ref: 'https://example.com/s.json'}}}",
        ),
        "points outside the schema",
        11,
    ),
    (
        "json-fields-wrong-shape",
        mutate("      - max_words: 12", "      - json_fields: {from_expect: [1, {a: 1}]}"),
        "from_expect takes a text or a list of texts",
        11,
    ),
    (
        "unknown-beside-missing",
        mutate("    prompt:", "    promt:"),
        "unknown key 'promt' (did you mean 'prompt'?)",
        5,
    ),
    (
        "billion-laughs",
        "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
            f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
            for i in range(9)
        ),
        "expands to more than",
        None,
    ),
    (
        "billion-laughs-in-vars",
        mutate("{{ complaint }}", "{{ complaint }} {{ laughs }}").replace(
            "    cases:",
            "    vars:\n      a: &a [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"      {chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n"
                for i in range(9)
            )
            + "      laughs: *j\n    cases:",
        ),
        "expands to more than",
        None,
    ),
    ("integer-too-long-target", mutate("target: 0.9", f"target: {BIG}"), "5,000 digits", 2),
    (
        "integer-too-long-max-tokens",
        mutate("    cases:", f"    max_tokens: {BIG}\n    cases:"),
        "5,000 digits",
        6,
    ),
    (
        "integer-too-long-var",
        mutate('{complaint: "order 1"}', f'{{complaint: "order 1", n: {BIG}}}'),
        "5,000 digits",
        8,
    ),
    (
        "integer-too-long-hex",
        mutate('{complaint: "order 1"}', f'{{complaint: "order 1", n: 0x{BIG}}}'),
        "5,000 digits",
        8,
    ),
    (
        "integer-too-long-key",
        mutate('{complaint: "order 1"}', f'{{complaint: "order 1", ? {BIG}: x}}'),
        "5,000 digits",
        8,
    ),
    ("control-esc-in-comment", VALID + "# \x1b[31mred\x1b[0m\n", "control character", 13),
    ("control-nul-in-value", mutate("Title for", "Title\x00 for"), "control character", 5),
    ("control-bel-in-comment", mutate("target: 0.9", "target: 0.9  # ding\x07"), "control", 2),
    (
        "noise-long-context-too-long",
        mutate("    cases:", "    perturb: {long_context: [100000000]}\n    cases:"),
        "long_context levels are at most 200,000",
        6,
    ),
    (
        "noise-distractors-too-many",
        mutate("    cases:", "    perturb: {distractors: [1, 1000000000]}\n    cases:"),
        "distractors levels are at most 1,000",
        6,
    ),
    (
        "noise-both-huge",
        mutate(
            "    cases:",
            "    perturb: {long_context: [100000000], distractors: [1000000000]}\n    cases:",
        ),
        "levels are at most",
        6,
    ),
    (
        "noise-on-its-own-line",
        mutate(
            "    cases:",
            "    perturb:\n      typos: [0.1]\n      long_context: [10000000]\n    cases:",
        ),
        "long_context levels are at most 200,000 (tokens of padding)",
        8,
    ),
    (
        "noise-infinite",
        mutate("    cases:", "    perturb: {distractors: [.inf]}\n    cases:"),
        "distractors levels are at most 1,000",
        6,
    ),
    (
        "noise-format-index",
        mutate("    cases:", "    perturb: {format: [20]}\n    cases:"),
        "format levels are at most 19",
        6,
    ),
    (
        "recursive-alias",
        mutate("vars: {complaint", "vars: &v {x: &l [*l], complaint"),
        "recursive alias *l",
        8,
    ),
    (
        "recursive-merge",
        mutate("vars: {complaint", "vars: &v {<<: *v, complaint"),
        "recursive alias *v",
        8,
    ),
    (
        "noise-thousands-of-levels",
        mutate(
            "    cases:",
            "    perturb: {distractors: ["
            + ", ".join(str(i) for i in range(1, 1001))
            + "]}\n    cases:",
        ),
        "distractors lists 1,000 levels; at most 20",
        6,
    ),
]


def test_corpus_is_big_enough() -> None:
    assert len(BROKEN) >= 45
    assert len({case[0] for case in BROKEN}) == len(BROKEN)


@pytest.mark.timing
@pytest.mark.timeout(30)
@pytest.mark.parametrize(("name", "content", "message", "line"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_suite_gives_one_line_and_exit_2(
    write, name: str, content: str | bytes, message: str, line: int | None
) -> None:
    path = write(f"{name}.yaml", content)
    result = run_cli("validate", str(path))
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}"), lines[0]
    assert message in lines[0], lines[0]
    if line is not None:
        assert lines[0].startswith(f"error: {path}:{line}: "), lines[0]
    assert "Traceback" not in result.stderr


BROKEN_CONFIGS = [
    (
        "literal-key",
        "models:\n  - name: m\n    model: openai/x\n    api_key: sk-abc123\n",
        "keys never go in config files",
        4,
    ),
    (
        "unknown-model-key",
        "models:\n  - name: m\n    model: openai/x\n    temprature: 0\n",
        "unknown key 'temprature'",
        4,
    ),
    (
        "duplicate-model-name",
        "models:\n  - {name: m, model: openai/x}\n  - {name: m, model: openai/y}\n",
        "used twice",
        1,
    ),
    (
        "bad-sampling",
        "models:\n  - name: m\n    model: openai/x\n    sampling: {temperature: 9}\n",
        "less than or equal to 2",
        4,
    ),
    ("unknown-noise-kind", "run:\n  levels: {typoz: [0.1]}\n", "unknown noise kind 'typoz'", 2),
    (
        "api-base-credentials",
        "models:\n  - name: m\n    model: openai/x\n    api_base: https://me:hunter2@h.example/v1\n",
        "carries credentials",
        4,
    ),
    (
        "api-base-query-key",
        "models:\n  - name: m\n    model: openai/x\n    api_base: https://h.example/v1?api_key=sk-leak1\n",
        "carries a key in its query string",
        4,
    ),
    (
        "api-base-not-http",
        "models:\n  - name: m\n    model: openai/x\n    api_base: file:///etc/passwd\n",
        "must be an http:// or https:// URL",
        4,
    ),
    (
        "parallel-not-local",
        "models:\n  - name: m\n    model: openai/x\n    parallel: 4\n    concurrency: 4\n",
        "parallel is for in-process models (local/…) only",
        2,
    ),
    (
        "parallel-above-concurrency",
        "models:\n  - name: m\n    model: local/smollm2-135m\n    parallel: 8\n",
        "parallel: 8 needs concurrency: 8 or more",
        2,
    ),
    ("integer-too-long-concurrency", f"run:\n  concurrency: {BIG}\n", "5,000 digits", 2),
    (
        "integer-too-long-max-tokens",
        f"models:\n  - name: m\n    model: openai/x\n    sampling: {{max_tokens: {BIG}}}\n",
        "5,000 digits",
        4,
    ),
    ("integer-too-long-seed", f"run:\n  repeats: 2\n  seed: -{BIG}\n", "5,000 digits", 3),
    (
        "control-esc-in-config",
        "models:\n  - {name: m, model: openai/x}  # \x1b[1mbold\n",
        "control character U+001B",
        2,
    ),
    ("control-nul-in-config", "run:\n  repeats: 2\x00\n", "control character U+0000", 2),
    (
        "noise-huge-in-run-levels",
        "run:\n  levels: {long_context: [100000000], distractors: [1000000000]}\n",
        "levels are at most",
        2,
    ),
    (
        "noise-distractors-in-run-levels",
        "run:\n  levels:\n    distractors: [1, 1000000000]\n",
        "distractors levels are at most 1,000",
        2,
    ),
    (
        "noise-long-context-in-run-levels",
        "run:\n  levels:\n    typos: [0.1]\n    long_context: [100000000]\n",
        "long_context levels are at most 200,000",
        2,
    ),
    ("recursive-alias-in-run", "run:\n  levels: &l {typos: [*l]}\n", "recursive alias *l", 2),
    (
        "recursive-alias-in-models",
        "models:\n  - &m {name: m, model: fake/m, sampling: *m}\n",
        "recursive alias *m",
        2,
    ),
]

SECRETS = ("sk-abc123", "hunter2", "sk-leak1")


@pytest.mark.parametrize(
    ("name", "content", "message", "line"), BROKEN_CONFIGS, ids=[b[0] for b in BROKEN_CONFIGS]
)
def test_broken_config_gives_one_line_and_exit_2(
    write, name: str, content: str, message: str, line: int
) -> None:
    suite = write("ok.yaml", VALID)
    config = write(f"{name}.yaml", content)
    args = ["plan", str(suite), "--models", str(config)]
    if content.startswith("run:"):  # run settings come through --config
        args = [
            "plan",
            str(suite),
            "--models",
            str(write("m.yaml", "models: [{name: m, model: fake/m}]\n")),
            "--config",
            str(config),
        ]
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {config}:{line}: "), lines[0]
    assert message in lines[0], lines[0]
    assert not any(secret in result.output for secret in SECRETS)  # refused, never echoed


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "name", ["billion-laughs", "deep-nesting", "huge-file", "non-utf8", "template-escape-class"]
)
def test_broken_suite_through_the_real_console_script(write, name: str) -> None:
    content = next(b[1] for b in BROKEN if b[0] == name)
    path = write(f"{name}.yaml", content)
    proc = subprocess.run(
        [sys.executable, "-m", "margin.cli.main", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {path}")
    assert "Traceback" not in proc.stderr


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "No such file" in result.stderr


def test_every_file_is_checked_before_exiting(write) -> None:
    good = write("good.yaml", VALID)
    bad = write("bad.yaml", mutate("target: 0.9", "target: high"))
    result = run_cli("validate", str(bad), str(good))
    assert result.exit_code == 2
    assert f"ok {good}" in result.stdout
    assert f"error: {bad}:2" in result.stderr


HOSTILE = [
    ("template-loop-bomb", "validate"),
    ("loop-bomb-in-every-case", "validate"),
    ("billion-laughs-in-vars", "validate"),
    ("string-bomb", "validate"),
    ("noise-both-huge", "plan"),
]
"""Unbounded, each would run for hours or past 1 GB on any machine: 10¹⁵ loop steps per render,
ten billion values rendered as text, a 1 GB string, a billion distractor sentences."""


@pytest.mark.timing
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("name", "command"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_inputs_end_within_60_s_and_1_gb(write, name: str, command: str) -> None:
    """Through the real console script, timed and measured by the kernel (wait4's rusage)."""
    import os
    import threading
    import time

    content = next(b[1] for b in BROKEN if b[0] == name)
    path = write(f"{name}.yaml", content)
    args = [str(path)]
    if command == "plan":
        args += ["--models", str(write("m.yaml", "models: [{name: m, model: fake/m}]\n"))]
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "margin.cli.main", command, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Bounded, these end in seconds (a render's timer is 2 s); unbounded they run for hours:
    # 60 s tells the two apart even on a machine 5x slower than this one.
    killer = threading.Timer(60, proc.kill)
    killer.start()
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    took = time.monotonic() - started
    assert took < 60, took
    assert proc.returncode == 2 and stderr.count("\n") == 1, stderr
    assert usage.ru_maxrss < 1024 * 1024, usage.ru_maxrss  # kilobytes: under 1 GB


@pytest.mark.parametrize("where", ["suite", "config"])
def test_run_refuses_a_recursive_alias_before_making_its_directory(
    write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    models = write("m.yaml", "models: [{name: m, model: fake/m}]\n")
    if where == "suite":
        bad = write("bad.yaml", next(b[1] for b in BROKEN if b[0] == "recursive-alias"))
        args = [str(bad), "--models", str(models)]
    else:
        bad = write("bad.yaml", "run:\n  repeats: 1\n  levels: &l {typos: [*l]}\n")
        args = [str(write("ok.yaml", VALID)), "--models", str(models), "--config", str(bad)]
    for out in ([], ["--out", str(tmp_path / "run1")]):
        result = run_cli("run", *args, "--no-cache", *out)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {bad}:") and result.stderr.count("\n") == 1
        assert "recursive alias *l" in result.stderr
    assert not (tmp_path / "run1").exists() and not (tmp_path / "reports").exists()


def test_a_folder_of_too_many_suites_is_refused_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(2001):
        (folder / f"s{i:04d}.yaml").write_text(VALID.replace("suite: s", f"suite: s{i}"))
    result = run_cli("validate", str(folder))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {folder}: more than 2,000 suite files in one command; split the run"
    )


def test_the_public_api_resolves_every_name() -> None:
    import margin

    for name in margin.__all__:
        assert getattr(margin, name) is not None, name
    suite = margin.load_suite(Path(__file__).parents[2] / "suites" / "routing.yaml")
    assert isinstance(suite, margin.Suite)
    with pytest.raises(AttributeError):
        _ = margin.no_such_name  # type: ignore[attr-defined]
