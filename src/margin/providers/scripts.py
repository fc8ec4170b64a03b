"""Scripted answers shared by the fake provider (`fake/<name>`) and the fake HTTP server.

A script maps prompt patterns to outputs and can inject latency and faults, so margin's tests
and users' own tests can exercise suites, validators and the runner without a real model.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "500", "503", "timeout", "malformed", "drop")
"""Faults a script can inject: HTTP statuses, a call that never answers, garbage, a cut."""


@dataclass(frozen=True)
class Rule:
    """When `pattern` (a regex) matches the last user message, answer `output`."""

    pattern: str
    output: str


@dataclass
class Script:
    """What a fake model answers and how it misbehaves.

    `outputs` are tried in order against the last user message; without a match the answer is
    `default`, where `{prompt}` stands for the last user message. `fault_rate` of calls fail
    with a fault drawn from `faults`, from a seeded generator, so a run is reproducible.
    """

    rules: Sequence[Rule] = ()
    default: str = "{prompt}"
    latency_s: float = 0.0
    fault_rate: float = 0.0
    faults: Sequence[str] = FAULT_KINDS
    retry_after_s: float = 0.05
    seed: int = 0
    prompt_tokens: int | None = None
    """Report this many prompt tokens instead of counting them (may be hostile: negative)."""
    completion_tokens: int | None = None
    """Report this many completion tokens instead of counting them (may pass max_tokens)."""
    honour_max_tokens: bool = True
    """Cut answers longer than the call's max_tokens (finish_reason `length`), as models do."""
    hold_after: int | None = None
    """The HTTP server answers this many calls, then holds every later one until it is told to
    go (`POST /release`); 0 holds them all. A test can so stop a run at an exact point, or keep
    it in flight exactly as long as it needs, on a machine of any speed."""
    gather: int = 0
    """The HTTP server holds the first answers until this many calls are in flight at once (or,
    once, `gather_wait_s` passed), so a concurrency limit is reached whatever the machine's
    speed; after that no call is held."""
    gather_wait_s: float = 10.0
    require_key: str | None = None
    """If set, the HTTP server answers 401 (quoting the key it got, as real providers do)
    unless `Authorization: Bearer <require_key>` is sent."""
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.faults) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kind {unknown[0]!r}; known: {FAULT_KINDS}")
        self._random = random.Random(self.seed)

    def answer(self, prompt: str) -> str:
        """The scripted output for `prompt`."""
        for rule in self.rules:
            if re.search(rule.pattern, prompt):
                return rule.output
        return self.default.replace("{prompt}", prompt)

    def draw_fault(self) -> str | None:
        """A fault for this call, or None."""
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(list(self.faults))
        return None


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters per token, at least one."""
    return max(1, len(text) // 4)


def count_prompt_tokens(messages: Sequence[dict[str, object]]) -> int:
    """Stand-in prompt tokens of a chat: the sum over its messages' contents."""
    return sum(count_tokens(str(m.get("content", ""))) for m in messages)


def last_user_message(messages: Sequence[dict[str, object]]) -> str:
    """The content of the last user message ('' if none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else str(content)
    return ""


def scripted_answer(
    script: Script, messages: Sequence[dict[str, object]], max_tokens: int | None
) -> tuple[str, int, int, str]:
    """(text, prompt tokens, completion tokens, finish_reason) for a call to `script`."""
    text = script.answer(last_user_message(messages))
    finish = "stop"
    if script.honour_max_tokens and max_tokens is not None and count_tokens(text) > max_tokens:
        text, finish = text[: max_tokens * 4], "length"
    prompt = script.prompt_tokens
    completion = script.completion_tokens
    return (
        text,
        count_prompt_tokens(messages) if prompt is None else prompt,
        count_tokens(text) if completion is None else completion,
        finish,
    )
