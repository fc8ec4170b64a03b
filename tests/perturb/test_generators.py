"""Property tests: same seed → same text; level 0 is the identity; a higher level changes at
least as much; template variables and protected facts survive."""

from __future__ import annotations

import difflib
import itertools
import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from margin.perturb import GENERATORS, INDEX_KINDS, NoiseContext, apply_noise, facts_in
from margin.perturb.inserts import LONG_CONTEXT_HEADER, corpus
from margin.suite.tasks import PERTURB_KINDS, SHARE_KINDS
from margin.validators import build_validator

WORDS = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu")), min_size=1, max_size=9)
SEPARATORS = st.sampled_from([" ", " ", " ", ", ", ". ", "\n", ": "])


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(WORDS, SEPARATORS), min_size=1, max_size=40))
    return "".join(word + sep for word, sep in parts).strip() or "word"


FACT = st.from_regex(r"[A-Z]-[0-9]{3,5}", fullmatch=True)
VALIDATORS = tuple(
    build_validator(spec)
    for spec in ({"max_words": 12}, "single_line", {"must_not_contain": ["angry"]}, "json")
)
LEVELS = {
    "typos": [0.05, 0.2, 0.5, 1.0],
    "case": [0.1, 0.5, 1.0],
    "whitespace": [0.1, 0.5, 1.0],
    "mildmix": [0.1, 0.5, 1.0],
    "distractors": [1, 2, 5],
    "long_context": [20, 100, 400],
    "conflict": [1, 2, 3],
    "format": [1, 7, 13],
    "rewrite": [1, 2, 3],
}


def noisy(text: str, kind: str, level: float, seed: int, facts: tuple[str, ...] = ()) -> str:
    return apply_noise(text, kind, level, seed, NoiseContext(facts=facts, validators=VALIDATORS))


def test_every_kind_in_the_suite_format_has_a_generator() -> None:
    assert set(PERTURB_KINDS) == set(GENERATORS)


@given(texts(), st.sampled_from(list(GENERATORS)), st.integers(0, 2**31 - 1), st.data())
def test_same_seed_same_text(text: str, kind: str, seed: int, data: st.DataObject) -> None:
    level = data.draw(st.sampled_from(LEVELS[kind]))
    assert noisy(text, kind, level, seed) == noisy(text, kind, level, seed)


@given(texts(), st.sampled_from(list(GENERATORS)), st.integers(0, 2**31 - 1))
def test_level_zero_is_the_identity(text: str, kind: str, seed: int) -> None:
    assert noisy(text, kind, 0, seed) == text


def kept_tokens(clean: str, changed: str) -> set[int]:
    """Indices of the clean text's tokens that survive verbatim (by a diff of token lists)."""
    a, b = clean.split(), changed.split()
    kept: set[int] = set()
    for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        kept.update(range(block.a, block.a + block.size))
    return kept


def is_subsequence(short: list[str], long: list[str]) -> bool:
    """`short` appears in `long` in order, other tokens between (exact, unlike a diff's blocks,
    which may pair a repeated word with the wrong copy and miss a match)."""
    rest = iter(long)
    return all(token in rest for token in short)


def test_is_subsequence() -> None:
    assert is_subsequence(["a", "b"], ["x", "a", "a", "y", "b"])
    assert not is_subsequence(["b", "a"], ["a", "b"])
    assert not is_subsequence(["a", "a"], ["a"])


@settings(max_examples=150)
@given(
    texts(),
    st.sampled_from(sorted(SHARE_KINDS - {"whitespace", "mildmix"})),
    st.integers(0, 2**31 - 1),
)
def test_higher_share_changes_a_superset_of_words(text: str, kind: str, seed: int) -> None:
    levels = LEVELS[kind]
    outputs = [noisy(text, kind, level, seed) for level in levels]
    for lower, higher in itertools.pairwise(outputs):
        low_tokens, high_tokens = lower.split(), higher.split()
        assert len(low_tokens) == len(high_tokens) == len(text.split())
        changed_low = {
            i for i, (c, n) in enumerate(zip(text.split(), low_tokens, strict=True)) if c != n
        }
        changed_high = {
            i for i, (c, n) in enumerate(zip(text.split(), high_tokens, strict=True)) if c != n
        }
        assert changed_low <= changed_high


@given(texts(), st.integers(0, 2**31 - 1))
def test_more_whitespace_at_higher_levels(text: str, seed: int) -> None:
    sizes = [len(noisy(text, "whitespace", level, seed)) for level in LEVELS["whitespace"]]
    assert sizes == sorted(sizes)
    assert all(
        noisy(text, "whitespace", lv, seed).split() == text.split() for lv in LEVELS["whitespace"]
    )


@settings(max_examples=150)
@given(texts(), st.integers(0, 2**31 - 1))
def test_mildmix_keeps_fewer_words_at_higher_levels(text: str, seed: int) -> None:
    kept = [kept_tokens(text, noisy(text, "mildmix", level, seed)) for level in LEVELS["mildmix"]]
    assert all(len(high) <= len(low) for low, high in itertools.pairwise(kept))


@given(
    texts(), st.sampled_from(["distractors", "long_context", "conflict"]), st.integers(0, 2**31 - 1)
)
def test_insertions_nest(text: str, kind: str, seed: int) -> None:
    outputs = [noisy(text, kind, level, seed) for level in LEVELS[kind]]
    for lower, higher in itertools.pairwise(outputs):
        assert len(higher) >= len(lower)
        # every word of the lower level's text is still there, in order
        assert is_subsequence(lower.split(), higher.split()), (lower, higher)


@given(
    texts(),
    st.sampled_from([k for k in GENERATORS if k not in INDEX_KINDS]),
    st.integers(0, 2**31 - 1),
    st.data(),
)
def test_template_variables_survive(text: str, kind: str, seed: int, data: st.DataObject) -> None:
    level = data.draw(st.sampled_from(LEVELS[kind]))
    words = text.split()
    assume(len(words) >= 2)
    template = " ".join(
        [words[0], "{{ complaint }}", *words[1:], "{{ max_words }}", "{% if x %}y{% endif %}"]
    )
    out = noisy(template, kind, level, seed)
    for tag in ("{{ complaint }}", "{{ max_words }}", "{% if x %}", "{% endif %}"):
        assert out.count(tag) == template.count(tag), (kind, out)


@given(texts(), FACT, st.sampled_from(list(GENERATORS)), st.integers(0, 2**31 - 1), st.data())
def test_protected_facts_survive(
    text: str, fact: str, kind: str, seed: int, data: st.DataObject
) -> None:
    level = data.draw(st.sampled_from(LEVELS[kind]))
    words = text.split()
    placed = " ".join([*words[: len(words) // 2], f"order {fact} and", *words[len(words) // 2 :]])
    out = noisy(placed, kind, level, seed, facts=(fact,))
    assert fact in out, (kind, level, out)


def test_facts_are_every_string_and_number_in_expect() -> None:
    facts = facts_in(
        {
            "order": "1234",
            "fields": {"total": 14.5, "items": 3, "name": "Anna Berg"},
            "ok": True,
            "facts": ["42 minutes", "Priya"],
        }
    )
    assert set(facts) == {"1234", "14.5", "3", "Anna Berg", "42 minutes", "Priya"}


def test_typos_are_keyboard_typos() -> None:
    text = "please route this message to the right team"
    out = noisy(text, "typos", 1.0, 3)
    for before, after in zip(text.split(), out.split(), strict=True):
        assert before != after
        assert abs(len(before) - len(after)) <= 1


def test_the_corpus_says_nothing_a_validator_looks_for() -> None:
    for sentence in corpus():
        assert not re.search(
            r"\d|billing|shipping|technical|account|returns|order|refund|angry|furious",
            sentence,
            re.I,
        )
    assert len(" ".join(corpus())) > 2000


def test_long_context_is_about_the_asked_tokens() -> None:
    out = noisy("Route this.", "long_context", 1000, 5)
    assert out.startswith(LONG_CONTEXT_HEADER) and out.endswith("Route this.")
    assert 4000 <= len(out) <= 4000 + 200


def test_conflict_lines_contradict_the_tasks_own_constraints() -> None:
    out = noisy("Write a ticket title.", "conflict", 4, 1)
    assert "at least 36 words" in out and "several lines" in out
    assert 'includes "angry"' in out and "not JSON" in out


def test_format_and_rewrite_change_the_presentation_not_the_facts() -> None:
    text = "Summarise the report below in at most 25 words.\nReport: Tom Fischer sold 8,000 units."
    formatted = noisy(text, "format", 6, 0, facts=("Tom Fischer", "8,000"))
    assert "REPORT - Tom Fischer sold 8,000 units." in formatted
    rewritten = noisy(text, "rewrite", 2, 0, facts=("Tom Fischer", "8,000"))
    assert rewritten != text and "Tom Fischer" in rewritten and "8,000" in rewritten
