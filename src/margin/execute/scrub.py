"""Api keys out of what margin keeps: provider error messages and the models' answers."""

from __future__ import annotations

import re
from collections.abc import Iterable

_MASKED = re.compile(r"[A-Za-z0-9_\-]{2,}\*{3,}[A-Za-z0-9_\-]*|\*{3,}[A-Za-z0-9_\-]{2,}")
"""A key as providers echo it, masked in the middle: `sk-abc***********xyz1`."""


def scrub(text: str, secret: str | None) -> str:
    """`text` with the secret, pieces of it, and any masked key a provider echoed replaced by
    `***`: a masked key still gives away its first and last characters."""
    if secret:
        text = text.replace(secret, "***")
        if len(secret) >= 12:
            for piece in (secret[:8], secret[-6:], secret[-4:]):
                text = text.replace(piece, "***")
    return _MASKED.sub("***", text)


LEAK_CHARS = 8
"""In an answer, this many characters of a key in a row are a leak of it (a key cut off at
max_tokens still leaks its start); a key shorter than this (a local server's placeholder such
as `none`) cannot be told from words, and is left alone in answers."""


def scrub_answer(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret, and each run of LEAK_CHARS or more of its characters, replaced
    by `***`. Unlike `scrub`, nothing shaped like a masked key is touched: an answer's `***`
    and short words are the model's own."""
    for secret in secrets:
        if len(secret) < LEAK_CHARS:
            continue
        text = text.replace(secret, "***")
        spans = []
        for start in range(len(secret) - LEAK_CHARS + 1):
            piece = secret[start : start + LEAK_CHARS]
            at = text.find(piece)
            while at != -1:
                spans.append((at, at + LEAK_CHARS))
                at = text.find(piece, at + 1)
        if spans:
            text = _blank(text, spans)
    return text


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each run of overlapping or touching spans replaced by one `***`."""
    kept: list[str] = []
    end = 0
    for start, stop in sorted(spans):
        if start > end or not kept:
            kept.append(text[end:start])
            kept.append("***")
        end = max(end, stop)
    return "".join(kept) + text[end:]
