"""Condition names, without pandas: the runner, the report and the frames name a condition alike."""

from __future__ import annotations


def condition_name(paraphrase: int, noise_kind: str, noise_level: float) -> str:
    """`p0` (the clean prompt), `p2` (a paraphrase), or `typos@0.05` (noise on the prompt)."""
    if noise_kind == "clean":
        return f"p{paraphrase}"
    return f"{noise_kind}@{noise_level:g}"
