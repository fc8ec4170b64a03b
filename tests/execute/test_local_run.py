"""The real SmolLM2-135M in-process and behind xllamacpp's HTTP server (plumbing, not quality)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator

import pytest

from margin.config import ModelSpec, Sampling
from margin.journal.records import read_journal
from margin.providers.gateway import close_clients, complete
from margin.providers.local_models import CATALOGUE, model_file
from tests.conftest import SUITES, run_cli

pytestmark = pytest.mark.timeout(600)


def smollm(**sampling: object) -> ModelSpec:
    return ModelSpec(
        name="smol",
        model="local/smollm2-135m",
        params="135M",
        concurrency=1,
        timeout=300,
        sampling=Sampling(**{"temperature": 0.0, "max_tokens": 16, **sampling}),
    )


def ask(model: ModelSpec, text: str, seed: int, max_tokens: int = 16) -> tuple[str, int]:
    async def go() -> tuple[str, int]:
        try:
            done = await complete(
                model,
                [{"role": "user", "content": text}],
                seed=seed,
                max_tokens=max_tokens,
                api_key=None,
            )
        finally:
            await close_clients()
        return done.text, done.output_tokens

    return asyncio.run(go())


def test_a_suite_runs_on_the_real_local_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "smol.yaml"
    config.write_text(
        json.dumps(
            {"models": [smollm().model_dump()], "run": {"paraphrases": False, "noise": False}}
        )
    )
    result = run_cli(
        "run",
        str(SUITES / "routing.yaml"),
        "--models",
        str(config),
        "--repeats",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len(records) == 10
    for record in records:
        assert record.error is None, record.error_message
        assert isinstance(record.output, str)
        assert 1 <= record.output_tokens <= 10  # the routing task caps answers at 10 tokens
        assert record.input_tokens > 20 and record.latency_s and record.latency_s > 0
        assert record.cost_usd == 0.0 and record.passed is not None
        assert [v.validator for v in record.verdicts] == ["choice"]
    assert re.search(
        r"^smol: \d+/10 [\d.]+% \[[\d.]+, [\d.]+\] over all tasks", result.stdout, re.M
    )


def test_sampling_settings_reach_the_model() -> None:
    greedy = smollm()
    prompt = "Write one short sentence about the sea."
    assert ask(greedy, prompt, seed=1) == ask(greedy, prompt, seed=2)  # temperature 0: seed moot
    hot = smollm(temperature=1.5, top_p=1.0)
    first = ask(hot, prompt, seed=11)
    assert ask(hot, prompt, seed=11) == first  # same seed, same sample
    others = {ask(hot, prompt, seed=s)[0] for s in (12, 13, 14)}
    assert others - {first[0]}  # other seeds sample other answers
    _, tokens = ask(greedy, "Count from one to fifty in words.", seed=1, max_tokens=4)
    assert 1 <= tokens <= 4


@pytest.fixture(scope="module")
def xllamacpp_server() -> Iterator[str]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(model_file(CATALOGUE["smollm2-135m"]))
    params.n_ctx = 2048
    params.verbosity = -1
    params.port = 0  # 127.0.0.1, a free port
    server = xllamacpp.Server(params)
    address = server.listening_address
    assert address.startswith("http://127.0.0.1:")
    yield f"{address}/v1"
    del server


def test_a_suite_through_litellm_http_against_xllamacpps_server(
    tmp_path, monkeypatch, xllamacpp_server
) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    config = tmp_path / "server.yaml"
    config.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "smol-http",
                        "model": "openai/smollm2-135m",
                        "api_base": xllamacpp_server,
                        "params": "135M",
                        "concurrency": 1,
                        "timeout": 120,
                        "sampling": {"temperature": 0.0, "max_tokens": 16},
                    }
                ],
                "run": {"noise": False},
            }
        )
    )
    result = run_cli(
        "run",
        str(SUITES / "arithmetic.yaml"),
        "--models",
        str(config),
        "--repeats",
        "1",
        "--out",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.output
    records = list(read_journal(tmp_path / "run" / "journal.jsonl"))
    assert len(records) == 30 and all(r.error is None for r in records)
    assert all(r.output and r.output_tokens >= 1 for r in records)
    assert all(r.cost_usd == 0.0 for r in records)  # a loopback api_base is priced as local


@pytest.mark.timing
def test_parallel_batches_calls_of_the_real_local_model_and_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MARGIN_CACHE_DIR", str(tmp_path / "cache"))
    batched = smollm().model_copy(update={"parallel": 3, "concurrency": 3})
    config = tmp_path / "smol.yaml"
    config.write_text(
        json.dumps(
            {
                "models": [batched.model_dump(exclude_none=True)],
                "run": {"paraphrases": False, "noise": False},
            }
        )
    )
    out = tmp_path / "run"
    result = run_cli("run", str(SUITES / "routing.yaml"), "--models", str(config),
                     "--repeats", "1", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = list(read_journal(out / "journal.jsonl"))
    assert len(records) == 10 and all(r.error is None and r.batched for r in records)
    spans = sorted((r.started_at, r.finished_at) for r in records)
    overlapping = sum(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    assert overlapping >= 1  # calls were in the model together, not one after another
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["models"][0]["parallel"] == 3
    assert results["run"]["models"][0]["batched_attempts"] == 10
    assert "smol (parallel: 3)" in results["run"]["latency_note"]
    assert "Batched latency." in (out / "index.html").read_text()
    assert "measured under batching" in (out / "summary.md").read_text()
