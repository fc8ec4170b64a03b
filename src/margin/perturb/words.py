"""Word-level noise: typos, case, whitespace, mildmix. Level = share of eligible words (0..1).

Which words change is the first ceil(level × n) of one seeded permutation, and each word's edit
comes from its own seeded generator: a higher level changes a superset of the same edits.
Protected spans (Jinja tags, facts) are never edited.
"""

from __future__ import annotations

import math
import random
import re

from margin.perturb.spans import free_words, outside, protected_ranges, replace_spans

KEYBOARD = {
    "q": "wa", "w": "qeas", "e": "wrds", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj",
    "i": "uojk", "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx",
    "f": "drtgvc", "g": "ftyhbv", "h": "gyujnb", "j": "huikmn", "k": "jiolm", "l": "kop",
    "z": "asx", "x": "zsdc", "c": "xdfv", "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk",
}  # fmt: skip
"""QWERTY neighbours of each letter."""

MISSPELLINGS = {
    "receive": "recieve", "received": "recieved", "separate": "seperate",
    "definitely": "definately",
    "arrived": "arived", "address": "adress", "until": "untill", "which": "wich",
    "because": "becuase", "their": "thier", "believe": "beleive", "occurred": "occured",
    "necessary": "neccessary", "immediately": "immediatly", "tomorrow": "tommorow",
    "package": "pakage", "delivery": "delivary", "customer": "costumer", "invoice": "invoise",
    "account": "acount", "message": "mesage", "summary": "sumary", "answer": "anwser",
    "number": "numbr", "without": "witout", "please": "pls", "really": "realy", "title": "tittle",
    "weeks": "weks", "refund": "refnd", "charged": "charjed", "words": "wrods",
}  # fmt: skip
"""Common misspellings (after HELM's misspelling table, abridged)."""

CONTRACTIONS = {
    "do not": "don't", "does not": "doesn't", "did not": "didn't", "is not": "isn't",
    "are not": "aren't", "can not": "can't", "cannot": "can't", "will not": "won't",
    "it is": "it's", "i am": "i'm", "you are": "you're", "we are": "we're", "that is": "that's",
    "has not": "hasn't", "have not": "haven't", "i have": "i've", "what is": "what's",
}  # fmt: skip


def _chosen(count: int, level: float, seed: int) -> list[int]:
    """Indices of the words to change: a prefix of one seeded permutation."""
    if count == 0 or level <= 0:
        return []
    order = list(range(count))
    random.Random(f"{seed}:order").shuffle(order)
    return sorted(order[: min(count, math.ceil(level * count - 1e-9))])


def _word_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:word:{index}")


def typo(word: str, rng: random.Random) -> str:
    """One keyboard typo: an adjacent-key substitution, a dropped, doubled or swapped letter."""
    if len(word) == 1:
        operations = ["substitute", "double"]
    else:
        operations = ["substitute", "drop", "double", "swap"]
    operation = rng.choice(operations)
    at = rng.randrange(len(word))
    letter = word[at]
    if operation == "substitute" and letter.lower() in KEYBOARD:
        new = rng.choice(KEYBOARD[letter.lower()])
        new = new.upper() if letter.isupper() else new
        return word[:at] + new + word[at + 1 :]
    if operation == "drop":
        return word[:at] + word[at + 1 :]
    if operation == "swap" and at < len(word) - 1 and word[at] != word[at + 1]:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return word[:at] + letter + word[at:]  # double (and the fallback for the cases above)


def _word_edit(text: str, level: float, seed: int, facts: list[str], kind: str) -> str:
    protected = protected_ranges(text, facts)
    words = free_words(text, protected)
    edits = {}
    for index in _chosen(len(words), level, seed):
        start, end = words[index]
        word, rng = text[start:end], _word_rng(seed, index)
        edits[(start, end)] = typo(word, rng) if kind == "typos" else recase(word, rng)
    return replace_spans(text, edits)


def recase(word: str, rng: random.Random) -> str:
    """The word in another letter case (always a different one)."""
    options = [w for w in {word.upper(), word.lower(), word.title(), word.swapcase()} if w != word]
    return rng.choice(sorted(options)) if options else word


def typos(text: str, level: float, seed: int, facts: list[str]) -> str:
    """Keyboard typos in `level` of the words."""
    return _word_edit(text, level, seed, facts, "typos")


def case(text: str, level: float, seed: int, facts: list[str]) -> str:
    """Changed letter case in `level` of the words."""
    return _word_edit(text, level, seed, facts, "case")


def whitespace(text: str, level: float, seed: int, facts: list[str]) -> str:
    """Extra spaces in `level` of the gaps between words."""
    protected = protected_ranges(text, facts)
    gaps = [
        m.start() for m in re.finditer(r"(?<=\S) (?=\S)", text) if outside(m.start(), protected)
    ]
    edits = {}
    for index in _chosen(len(gaps), level, seed):
        extra = " " * _word_rng(seed, index).randint(1, 3)
        edits[(gaps[index], gaps[index] + 1)] = " " + extra
    return replace_spans(text, edits)


def mildmix(text: str, level: float, seed: int, facts: list[str]) -> str:
    """HELM's mild mix at `level`: lowercase, contractions, misspellings, extra spaces.

    Each chosen word is lowercased and, where the tables know it, misspelled; a chosen word that
    opens a contractible phrase is contracted with the next word; a space follows some of them.
    """
    protected = protected_ranges(text, facts)
    words = free_words(text, protected)
    chosen = set(_chosen(len(words), level, seed))
    edits: dict[tuple[int, int], str] = {}
    skip_next = False
    for index, (start, end) in enumerate(words):
        if skip_next or index not in chosen:
            skip_next = False
            continue
        rng = _word_rng(seed, index)
        word = text[start:end].lower()
        if index + 1 < len(words):
            n_start, n_end = words[index + 1]
            phrase = f"{word} {text[n_start:n_end].lower()}"
            if phrase in CONTRACTIONS and text[end:n_start] == " ":
                edits[(start, n_end)] = CONTRACTIONS[phrase]
                skip_next = True
                continue
        word = CONTRACTIONS.get(word, MISSPELLINGS.get(word, word))
        edits[(start, end)] = word + ("  " if rng.random() < 0.5 else "")
    return replace_spans(text, edits)
