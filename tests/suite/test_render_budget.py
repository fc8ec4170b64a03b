"""The time a suite's template checks share (templates.RenderBudget), tested with an injected
clock or with templates that cannot finish on any machine — never with a fixed amount of work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from margin.errors import SuiteError
from margin.suite.load import load_suite
from margin.suite.templates import RENDER_SECONDS, RenderBudget, TemplateProblem, render

LOOP_BOMB = (
    "{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}"
    "{% endfor %}{% endfor %}{% endfor %}done"
)
"""10¹⁵ sandboxed loop steps (100,000 is the sandbox's largest range): years on any machine."""


def ticking(step: float) -> Callable[[], float]:
    """A clock that moves `step` seconds each time it is read."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_fast_renders_exhaust_the_budget_when_the_clock_says_so() -> None:
    budget = RenderBudget(5, clock=ticking(1.0))
    done = 0
    with pytest.raises(TemplateProblem, match=r"longer than 5 s in all to render"):
        for _ in range(100):
            render("Title for {{ x }}", {"x": "order 1"}, budget)
            done += 1
    assert 1 <= done < 5


def test_a_stopped_clock_never_runs_out() -> None:
    budget = RenderBudget(5, clock=lambda: 0.0)
    for _ in range(50):
        assert render("{{ x }}", {"x": "y"}, budget) == "y"
    assert budget.left() == 5


@pytest.mark.timing
def test_a_budget_smaller_than_one_render_cuts_a_loop_bomb_with_the_in_all_message() -> None:
    seconds = RENDER_SECONDS / 10
    budget = RenderBudget(seconds, clock=lambda: 0.0)  # the clock never moves: the timer stops it
    with pytest.raises(TemplateProblem, match=rf"longer than {seconds:g} s in all to render"):
        render(LOOP_BOMB, {}, budget)


@pytest.mark.timing
def test_without_a_budget_a_loop_bomb_is_cut_at_one_render() -> None:
    with pytest.raises(TemplateProblem, match=rf"takes longer than {RENDER_SECONDS:g} s"):
        render(LOOP_BOMB, {})


SUITE = """\
suite: s
target: 0.9
tasks:
  - id: t
    prompt: "Title for {{ complaint }}"
    cases:
%s
    validators: [json]
"""


def test_a_suite_check_stops_when_the_shared_budget_runs_out(tmp_path: Path) -> None:
    cases = "".join(f"      - {{id: c{i}, vars: {{complaint: x{i}}}}}\n" for i in range(16))
    path = tmp_path / "s.yaml"
    path.write_text(SUITE % cases.rstrip("\n"))
    with pytest.raises(SuiteError, match=r"longer than 3 s in all") as caught:
        load_suite(path, RenderBudget(3, clock=ticking(1.0)))
    assert caught.value.one_line().startswith(f"{path}:")
    assert load_suite(path, RenderBudget(3, clock=lambda: 0.0)).suite == "s"
