"""Shards: `margin run --shard i/n` and `margin merge` give exactly the single-machine run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from margin.execute.shards import parse_shard, shard_of
from margin.journal.records import read_journal
from margin.plan import AttemptKey
from margin.providers.fake import register_script
from margin.providers.scripts import Rule, Script
from tests.conftest import SUITES, run_cli

ROUTING = str(SUITES / "routing.yaml")
RULES = [
    Rule("charged twice|invoice|VAT", "billing"),
    Rule("parcel|courier|delivered", "shipping"),
    Rule("crashes|API returns", "technical"),
]


@pytest.fixture(autouse=True)
def _scripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register_script("shard-good", Script(rules=RULES, default="account"))
    register_script("shard-lazy", Script(default="billing"))
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))


def config(tmp_path: Path, seed: int = 0) -> Path:
    path = tmp_path / f"models-{seed}.yaml"
    models = [
        {"name": "good", "model": "fake/shard-good"},
        {"name": "lazy", "model": "fake/shard-lazy"},
    ]
    path.write_text(
        json.dumps({"models": models, "run": {"noise": False, "repeats": 2, "seed": seed}})
    )
    return path


def run(tmp_path: Path, out: Path, *extra: str, seed: int = 0) -> None:
    result = run_cli(
        "run", ROUTING, "--models", str(config(tmp_path, seed)), "--out", str(out), *extra
    )
    assert result.exit_code == 0, result.output


def facts(folder: Path) -> tuple[list[str], list[tuple[object, ...]]]:
    keys = sorted(r.key for r in read_journal(folder / "journal.jsonl"))
    results = json.loads((folder / "results.json").read_text())
    rows = [
        (t["model"], t["task"], t["passes"], t["n"], t["low"], t["high"], t["verdict"], t["rank"])
        for t in sorted(results["tasks"], key=lambda t: t["model"])
    ]
    return keys, rows


def test_shards_merge_into_exactly_the_single_machine_run(tmp_path) -> None:
    run(tmp_path, tmp_path / "whole")
    whole = facts(tmp_path / "whole")
    assert len(whole[0]) == 80  # 2 models × 10 cases × 2 wordings × 2 repeats
    for count in (1, 3, 7):
        shards = [tmp_path / f"n{count}" / f"s{i}" for i in range(1, count + 1)]
        for index, folder in enumerate(shards, start=1):
            run(tmp_path, folder, "--shard", f"{index}/{count}")
        sizes = [len(list(read_journal(f / "journal.jsonl"))) for f in shards]
        assert sum(sizes) == 80
        merged = tmp_path / f"merged{count}"
        result = run_cli("merge", *map(str, shards), "--out", str(merged))
        assert result.exit_code == 0, result.output
        assert facts(merged) == whole


def test_mismatched_repeated_missing_or_overlapping_shards_are_refused(tmp_path) -> None:
    shards = [tmp_path / f"s{i}" for i in (1, 2, 3)]
    for index, folder in enumerate(shards, start=1):
        run(tmp_path, folder, "--shard", f"{index}/3")
    run(tmp_path, tmp_path / "other", "--shard", "2/3", seed=9)

    def refused(*folders: Path) -> str:
        result = run_cli("merge", *map(str, folders), "--out", str(tmp_path / "merged"))
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        return result.output

    assert "given twice" in refused(shards[0], shards[0], shards[1], shards[2])
    assert "shard 3/3 is missing" in refused(shards[0], shards[1])
    assert "not a shard of the same run" in refused(shards[0], tmp_path / "other", shards[2])
    # an attempt recorded in two shards
    line = (shards[0] / "journal.jsonl").read_text().splitlines(keepends=True)[0]
    with (shards[1] / "journal.jsonl").open("a") as handle:
        handle.write(line)
    assert "is in two shards" in refused(*shards)


def test_a_killed_shard_resumes_and_only_a_finished_shard_merges(tmp_path) -> None:
    shards = [tmp_path / f"s{i}" for i in (1, 2)]
    for index, folder in enumerate(shards, start=1):
        run(tmp_path, folder, "--shard", f"{index}/2")
    journal = shards[1] / "journal.jsonl"
    kept = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(kept[: len(kept) // 2]) + kept[len(kept) // 2][:40])  # killed
    result = run_cli("merge", *map(str, shards), "--out", str(tmp_path / "merged"))
    assert result.exit_code == 2 and "run the unfinished shard again" in result.output
    run(tmp_path, shards[1], "--shard", "2/2")  # resumes: only what is missing runs
    assert sorted(r.key for r in read_journal(journal)) == sorted(
        line.split('"key":"')[1].split('"')[0] for line in kept
    )
    result = run_cli("merge", *map(str, shards), "--out", str(tmp_path / "merged"))
    assert result.exit_code == 0, result.output
    wrong = run_cli("run", ROUTING, "--models", str(config(tmp_path)), "--out", str(shards[1]))
    assert wrong.exit_code == 2 and "holds shard 2/2, not the whole run" in wrong.output


def test_shard_parsing_and_stability() -> None:
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(Exception, match="i/n"):
            parse_shard(bad)
    key = AttemptKey("m", "s", "t", "c", "p0", 0)
    assert shard_of(key, 7) == shard_of(AttemptKey("m", "s", "t", "c", "p0", 0), 7)
    tries = [AttemptKey("m", "s", "t", "c", "p0", 0, "retry(m, 3)", step) for step in range(3)]
    assert len({shard_of(k, 5) for k in tries}) == 1  # a policy execution stays in one shard
    spread = {shard_of(AttemptKey("m", "s", "t", f"c{i}", "p0", 0), 3) for i in range(50)}
    assert spread == {1, 2, 3}


def test_shards_move_nothing_between_runs(tmp_path) -> None:
    shutil.rmtree(tmp_path / "none", ignore_errors=True)
    result = run_cli(
        "run", ROUTING, "--models", str(config(tmp_path)), "--shard", "4/3", "--out",
        str(tmp_path / "none"),
    )  # fmt: skip
    assert result.exit_code == 2 and "1 ≤ i ≤ n" in result.output
