"""The spending cap is a cap, a model's limits are its own, and no slot idles (issue 8, 1–3);
a capped run uses its cap (issue 23, 13)."""

from __future__ import annotations

import json
from multiprocessing import get_context
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from margin.config import ModelSpec, RunSettings
from margin.execute.budget import Budget
from margin.execute.cache import AnswerCache, JournalAndCache, cache_key
from margin.execute.executors.pool import split_limits
from margin.journal.records import AttemptRecord, Journal, read_journal
from margin.plan import build_plan
from margin.providers.fake import register_script
from margin.providers.scripts import Script
from margin.suite.load import load_suites
from tests.conftest import SUITES, run_cli
from tests.execute.conftest import ROUTING_RULES, fast_settings, loopback, server_stats

ROUTING = str(SUITES / "routing.yaml")

# One task, no max_tokens of its own, and a validator whose length hint (12 tokens) is far
# below the answers the server gives (100 tokens): the old estimate trusted the hint.
LONG_ANSWER_SUITE = """\
suite: long
target: 0.9
tasks:
  - id: t
    prompt: "Say something about {{ thing }} ({{ n }})."
    cases:
"""
LONG_ANSWER_SUITE += "".join(
    f'      - {{id: c{i}, vars: {{thing: "item {i}", n: {i}}}}}\n' for i in range(40)
)
LONG_ANSWER_SUITE += "    validators:\n      - max_words: 5\n"

PRICE = {"input_per_mtok": 10.0, "output_per_mtok": 100.0}
"""$0.0001 per completion token: a 100-token answer costs about a cent."""


def spend(folder: Path) -> float:
    return sum(r.cost_usd or 0.0 for r in read_journal(folder / "journal.jsonl"))


def run_long(models: Path, out: Path, *extra: str) -> object:
    return run_cli("run", str(out.parent / "long.yaml"), "--models", str(models), "--out", str(out),
                   "--repeats", "1", *extra)  # fmt: skip


def test_the_cap_holds_across_four_workers_with_answers_longer_than_estimated(
    tmp_path, models_config, cache_dir
) -> None:
    (tmp_path / "long.yaml").write_text(LONG_ANSWER_SUITE)
    with loopback(Script(default="word " * 80)) as url:  # 400 chars = 100 tokens each
        models = models_config(
            url, price=PRICE, concurrency=8, sampling={"temperature": 0, "max_tokens": 100}
        )
        out = tmp_path / "run"
        result = run_long(models, out, "--workers", "4", "--max-cost", "0.05", "--no-cache")
        assert result.exit_code == 0, result.output
        assert "budget: stopped scheduling" in result.stderr
    records = list(read_journal(out / "journal.jsonl"))
    assert records and all(r.output_tokens == 100 for r in records)
    # Every call reserved its worst case (prompt + max_tokens) from one shared account, so
    # the recorded spend never passes the cap — not 4× it, not the validator-hint estimate.
    assert spend(out) <= 0.05
    assert spend(out) >= 0.05 - 9 * max(r.cost_usd or 0 for r in records)  # and it was used


def test_the_cap_counts_earlier_invocations_of_the_run(tmp_path, models_config, cache_dir) -> None:
    (tmp_path / "long.yaml").write_text(LONG_ANSWER_SUITE)
    with loopback(Script(default="word " * 80)) as url:
        models = models_config(
            url, price=PRICE, concurrency=2, sampling={"temperature": 0, "max_tokens": 100}
        )
        out = tmp_path / "run"
        first = run_long(models, out, "--max-cost", "0.03", "--no-cache")
        assert first.exit_code == 0, first.output
        after_first = spend(out)
        calls = server_stats(url)["requests"]
        second = run_long(models, out, "--max-cost", "0.03", "--no-cache")
        assert second.exit_code == 0, second.output
        # Running the same command again does not spend the cap again.
        assert server_stats(url)["requests"] == calls
    assert spend(out) == after_first <= 0.03
    assert "budget: stopped scheduling" in second.stderr


def test_answers_past_max_tokens_overrun_only_by_the_calls_in_flight(
    tmp_path, models_config, cache_dir
) -> None:
    """A server that bills more tokens than max_tokens allows (hostile, or a bug) can push the
    spend past the cap only by what the calls already in flight cost."""
    (tmp_path / "long.yaml").write_text(LONG_ANSWER_SUITE)
    script = Script(default="ok", completion_tokens=300, honour_max_tokens=False)
    with loopback(script) as url:
        models = models_config(
            url, price=PRICE, concurrency=4, sampling={"temperature": 0, "max_tokens": 100}
        )
        out = tmp_path / "run"
        result = run_long(models, out, "--workers", "2", "--max-cost", "0.1", "--no-cache")
        assert result.exit_code == 0, result.output
    per_call = max(r.cost_usd or 0 for r in read_journal(out / "journal.jsonl"))
    # Used up to a call's worst case (less than a call) below the cap, whatever the timing (the
    # calls may all have gone out one by one), and past it by no more than four in flight.
    assert 0.1 - per_call < spend(out) <= 0.1 + 4 * per_call


def test_negative_usage_is_refused_not_credited(tmp_path, models_config, cache_dir) -> None:
    (tmp_path / "long.yaml").write_text(LONG_ANSWER_SUITE)
    with loopback(Script(default="ok", completion_tokens=-1_000_000)) as url:
        models = models_config(url, price=PRICE)
        out = tmp_path / "run"
        settings = fast_settings(tmp_path, retries=0)
        result = run_long(models, out, "--config", str(settings), "--max-cost", "1")
        assert result.exit_code == 0, result.output
    records = list(read_journal(out / "journal.jsonl"))
    assert {r.error for r in records} == {"MalformedResponse"}
    assert all(r.cost_usd == 0 for r in records)
    assert "negative token usage" in records[0].error_message


def test_budget_is_reserved_and_settled_atomically() -> None:
    budget = Budget(cap=1.0, spent=0.25)
    assert budget.reserve(0.5)
    seen = budget.settles
    assert not budget.reserve(0.5)  # 0.25 spent + 0.5 held + 0.5 > 1.0: wait, a call is out
    assert not budget.stopped
    budget.settle(0.5, 0.4)
    assert budget.spent == 0.65 and budget.reserved == 0.0
    assert budget.wait(seen, timeout=0)  # the settle is seen, however late one looks
    assert not budget.reserve(0.5)  # 0.65 + 0.5 > 1.0 with nothing in flight: never fits
    assert budget.stopped and not budget.reserve(0.01)  # once stopped, stays stopped
    budget.settle(0.0, -5.0)  # a negative bill never lowers the spend
    assert budget.spent == 0.65


def _settle_after_waiting(budget: Budget, seen: int, answer: Connection) -> None:
    answer.send(budget.wait(seen, timeout=60))


def test_a_settle_in_one_process_wakes_a_wait_in_another() -> None:
    """Forked workers share one account: a worker with nothing in flight near the cap waits for
    another's call to settle (whether the settle comes before or during its wait)."""
    budget = Budget(cap=1.0)
    assert budget.reserve(0.6)
    seen = budget.settles
    assert not budget.reserve(0.6) and not budget.stopped
    context = get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_settle_after_waiting, args=(budget, seen, send))
    child.start()
    budget.settle(0.6, 0.1)  # the call came back: 0.1 billed, 0.5 of its worst case unused
    assert receive.recv() is True
    child.join(60)
    assert child.exitcode == 0
    assert budget.reserve(0.6) and budget.reserved == 0.6  # 0.1 + 0.6 fits now


# Forty cases, each a prompt of about 11 tokens: the default max_tokens (256) makes a worst case
# of $0.0257 while the answer (12 tokens) costs $0.0013. Three worst cases fit in the cap at
# once; about forty answers do — fewer than the eighty attempts of two repeats.
SHORT_ANSWERS_CAP = 0.08


def worst_case(record: AttemptRecord) -> float:
    tokens_in = sum(len(m.content) // 4 + 4 for m in record.messages)
    return (tokens_in * PRICE["input_per_mtok"] + 256 * PRICE["output_per_mtok"]) / 1e6


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_capped_run_uses_its_cap_when_answers_are_shorter_than_max_tokens(
    tmp_path, models_config, cache_dir, workers: str
) -> None:
    """Each call in flight holds its worst case; near the cap a call waits for those in flight
    to settle (giving back what their answers did not use) instead of stopping the run."""
    (tmp_path / "long.yaml").write_text(LONG_ANSWER_SUITE)
    with loopback(Script(default="word " * 10)) as url:
        models = models_config(url, price=PRICE, concurrency=8)
        out = tmp_path / "run"
        result = run_cli("run", str(tmp_path / "long.yaml"), "--models", str(models),
                         "--out", str(out), "--repeats", "2", "--workers", workers,
                         "--max-cost", str(SHORT_ANSWERS_CAP), "--no-cache")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "budget: stopped scheduling" in result.stderr and "not run" in result.stderr
    records = list(read_journal(out / "journal.jsonl"))
    assert all(r.max_tokens == 256 and r.output_tokens == 12 for r in records)
    # It stopped only when the next worst case could not fit with nothing in flight.
    assert SHORT_ANSWERS_CAP - max(map(worst_case, records)) < spend(out) <= SHORT_ANSWERS_CAP
    assert len(records) < 80


class _Kill(Exception):
    pass


class _DyingJournal:
    def append(self, record: object, cache_key: str | None = None) -> None:
        raise _Kill


def _paid_record(**fields: object) -> AttemptRecord:
    return AttemptRecord.model_validate(
        {
            **{f: "x" for f in ("key", "model", "litellm_model", "suite", "task", "case")},
            "variant": "p0", "paraphrase": 0, "noise_kind": "clean", "noise_level": 0,
            "variant_version": 1, "repeat": 0, "seed": 1, "temperature": 0, "messages": [],
            "output": "billing", "verdicts": [], "passed": True, "partial": 1.0,
            "latency_s": 0.1, "cost_usd": 0.5, "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:00:01Z", **fields,
        }
    )  # fmt: skip


def test_a_paid_record_reaches_the_os_at_once_a_free_replay_by_closing(tmp_path) -> None:
    """A kill may lose buffered replays of the cache (the next run replays them again, free),
    never a record that cost a call: the model's or a judge's."""
    path = tmp_path / "j.jsonl"

    def on_disk() -> int:
        return len(path.read_text(encoding="utf-8").splitlines())

    replay = {"cache_hit": True, "cost_usd": 0.0, "cost_saved_usd": 0.5}
    with Journal(path) as journal:
        journal.append(_paid_record(key="a"))
        assert on_disk() == 1
        journal.append(_paid_record(key="b", **replay))
        assert on_disk() == 1  # waits in the buffer
        journal.append(_paid_record(key="c", judge_cost_usd=0.01, **replay))
        assert on_disk() == 3  # a paid judge call: flushed, with what waited before it
        journal.append(_paid_record(key="d", **replay))
    assert on_disk() == 4  # closing writes the rest
    assert [r.key for r in read_journal(path)] == ["a", "b", "c", "d"]


def test_an_answer_is_cached_only_after_it_is_journaled(tmp_path) -> None:
    """A kill between the two must not turn a paid call into a free cache hit on resume."""
    suites = load_suites([ROUTING])
    model = ModelSpec(name="m", model="fake/echo")
    attempt = build_plan(suites, [model], RunSettings(repeats=1, noise=False)).attempts[0]
    cache = AnswerCache(tmp_path / "cache")
    key = cache_key(model, attempt)
    record = _paid_record()
    sink = JournalAndCache(_DyingJournal(), cache)  # type: ignore[arg-type]
    with pytest.raises(_Kill):
        sink.append(record, key)
    assert cache.get(key) is None
    with Journal(tmp_path / "j.jsonl") as journal:
        JournalAndCache(journal, cache).append(record, key)
    assert cache.get(key) is not None and cache.get(key).cost_usd == 0.5  # type: ignore[union-attr]
    cache.close()


@pytest.mark.timing
def test_concurrency_one_with_four_workers_is_one_call_at_a_time(
    tmp_path, models_config, cache_dir
) -> None:
    # The server holds the first answer until a second call is in flight (or 1 s passed): a
    # second call let through by any of the 4 workers is caught on a machine of any speed.
    with loopback(Script(rules=ROUTING_RULES, gather=2, gather_wait_s=1.0)) as url:
        models = models_config(url, concurrency=1)
        result = run_cli(
            "run", ROUTING, "--models", str(models), "--workers", "4", "--repeats", "2",
            "--out", str(tmp_path / "r"), "--no-cache",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert server_stats(url)["max_in_flight"] == 1
        assert server_stats(url)["requests"] == 40


def test_limits_are_split_never_multiplied() -> None:
    suites = load_suites([ROUTING])
    models = [
        ModelSpec(name="one", model="openai/a", concurrency=1),
        ModelSpec(name="slow", model="openai/b", concurrency=10, rpm=3),
        ModelSpec(name="wide", model="openai/c", concurrency=7, rpm=100),
    ]
    settings = RunSettings(repeats=5, concurrency=10, noise=False)
    plan = build_plan(suites, models, settings)
    shares = split_limits(plan.attempts, settings, 4)
    assert sum(s.concurrency for s, _ in shares) <= 10
    for model in models:
        copies = {
            id(a.model): a.model for _, part in shares for a in part if a.model.name == model.name
        }.values()
        assert sum(m.concurrency for m in copies) == model.concurrency
        if model.rpm:
            assert sum(m.rpm or 0 for m in copies) == model.rpm
        assert len(copies) <= min(4, model.concurrency, model.rpm or 4)
    dealt = sorted(str(a.key) for _, part in shares for a in part)
    assert dealt == sorted(str(a.key) for a in plan.attempts)
    # A global cap below the worker count uses fewer workers, each with one slot.
    tight = settings.model_copy(update={"concurrency": 2})
    assert [s.concurrency for s, _ in split_limits(plan.attempts, tight, 4)] == [1, 1]


@pytest.mark.timing
def test_a_waiting_model_holds_no_global_slot(tmp_path, cache_dir) -> None:
    """Model A (one slot, slow) has more work queued than slots; model B must not wait for A."""
    register_script("slow-a", Script(default="1000", latency_s=0.4))
    register_script("fast-b", Script(default="1000", latency_s=0.01))
    config = tmp_path / "m.yaml"
    config.write_text(
        json.dumps(
            {
                "models": [
                    {"name": "a", "model": "fake/slow-a", "concurrency": 1},
                    {"name": "b", "model": "fake/fast-b", "concurrency": 2},
                ],
                "run": {"concurrency": 2, "noise": False, "paraphrases": False, "repeats": 1},
            }
        )
    )
    out = tmp_path / "r"
    result = run_cli(
        "run", str(SUITES / "arithmetic.yaml"), "--models", str(config), "--out", str(out),
        "--no-cache",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = list(read_journal(out / "journal.jsonl"))
    start = min(r.started_at for r in records)
    first_b = min(r.finished_at for r in records if r.model == "b")
    first_a = min(r.finished_at for r in records if r.model == "a")
    # B's first answer arrives while A's first call (0.4 s) is still running: had B waited for
    # a global slot held by A, it could not finish before A's first call did. (No absolute
    # bound: on a loaded 2-core machine start-up alone took 0.34 s once.)
    assert first_b < first_a
    assert (first_a - start).total_seconds() >= 0.4
