"""Verbatim text shared between the suspect work and the controls, wherever the passage boundaries fall.

Identical passages are easy to spot by hash, but a quotation or a copied chapter in a control work rarely
starts on the same token as a passage of the suspect work, so its passages hash differently. This module
compares the texts themselves by winnowing (Schleimer, Wilkerson & Aiken 2003, "Winnowing: local algorithms
for document fingerprinting", the method of the MOSS plagiarism detector):

- the text is normalised (lowercased, runs of whitespace collapsed to one space);
- every k-character window gets a 64-bit hash (a polynomial rolling hash, mixed by the splitmix64 finaliser);
- in every run of ``window`` consecutive hashes the smallest is kept: the passage's fingerprints.

Two texts sharing a span of at least k + window - 1 characters share a fingerprint (the guarantee of
winnowing), and the fingerprints of a copied region are the same wherever it sits, so

    containment(p) = |fingerprints(p) ∩ fingerprints(other side)| / |fingerprints(p)|

is about the share of passage p's text found verbatim on the other side (searched in the whole texts the
other side's passages were cut from, when given). A passage with containment of at least ``share`` is
reported. With k = 50 (passages of 150 characters or more), a chance match between independent texts needs
the same 50 characters in a row; shorter passages use shorter windows, down to 30 characters
(:func:`sizes_for`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

K = 50
MIN_K = 30
WINDOW = 20
SHARE = 0.5
_SPACE = re.compile(r"\s+")
_BASE = np.uint64(1_000_003)
_BASE_INVERSE = np.uint64(pow(1_000_003, -1, 2**64))


def normalise(text: str) -> str:
    """Lowercased, runs of whitespace collapsed to one space, ends stripped.

    >>> normalise("  The  Old\\nMan ")
    'the old man'
    """
    return _SPACE.sub(" ", text).strip().lower()


def _mix(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele, Lea & Flood 2014), elementwise: spreads every input bit over the output."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def window_hashes(text: str, *, k: int = K) -> np.ndarray:
    """The hash of every k-character window of the normalised text (one hash of the whole text when it is
    shorter than k; none for an empty text). Equal windows have equal hashes, wherever they are.

    >>> a, b = window_hashes("xx the same words yy", k=8), window_hashes("the same words", k=8)
    >>> bool(np.isin(b, a).all()), len(a), len(b)
    (True, 13, 7)
    """
    codes = np.frombuffer(normalise(text).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    k = min(k, n)
    with np.errstate(over="ignore"):
        # sum_{j=i}^{i+k-1} c_j B^(i+k-1-j) = B^(i+k-1) (Q_{i+k} - Q_i), Q_i = sum_{j<i} c_j B^-j, all mod 2^64
        powers = np.concatenate([[np.uint64(1)], np.cumprod(np.full(n - 1, _BASE, dtype=np.uint64))])
        inverse = np.concatenate([[np.uint64(1)], np.cumprod(np.full(n - 1, _BASE_INVERSE, dtype=np.uint64))])
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(codes * inverse, dtype=np.uint64)])
        starts = np.arange(n - k + 1)
        hashes = powers[starts + k - 1] * (prefix[starts + k] - prefix[starts])
        return _mix(hashes)


def fingerprints(text: str, *, k: int = K, window: int = WINDOW) -> set[int]:
    """The winnowed fingerprints of ``text``: the smallest hash of every ``window`` consecutive window hashes.

    >>> copied = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age"
    >>> fingerprints("Preface. " + copied + " and so on") >= fingerprints(copied)
    True
    """
    hashes = window_hashes(text, k=k)
    if len(hashes) <= window:
        return {int(hashes.min())} if len(hashes) else set()
    runs = np.lib.stride_tricks.sliding_window_view(hashes, window)
    return set(runs.min(axis=1).tolist())


def sizes_for(passages: Sequence[Any]) -> tuple[int, int]:
    """(k, window) for passages of this length (the median, normalised): k = a third of it, between
    ``MIN_K`` and ``K``; window = 2k/5 (``WINDOW`` for k = ``K``). Shorter k find shorter copies but also
    formulaic phrases: on WikiMIA's separate Wikipedia texts, k = 20 flagged 4 of 776 texts as half copied
    ("was a professional wrestling pay-per-view event"), k = 30 none.

    >>> from types import SimpleNamespace
    >>> sizes_for([SimpleNamespace(text="x" * 2000)]), sizes_for([SimpleNamespace(text="x" * 60)])
    ((50, 20), (30, 12))
    """
    median = int(np.median([len(normalise(p.text)) for p in passages])) if passages else 0
    k = max(MIN_K, min(K, median // 3))
    return k, 2 * k // 5


@dataclass(frozen=True)
class SharedPassage:
    """A passage of one side (``side``) whose text is mostly found on the other side.

    ``containment``: the share of its fingerprints found there; ``other``: the text of the other side (a source
    or a passage) holding one of them.
    """

    side: str
    passage: str
    other: str
    containment: float


def _index(texts: Iterable[Any], k: int, window: int) -> dict[int, str]:
    index: dict[int, str] = {}
    for text in texts:
        for value in fingerprints(text.text, k=k, window=window):
            index.setdefault(value, text.id)
    return index


def shared_passages(
    suspect: Sequence[Any],
    control: Sequence[Any],
    *,
    suspect_texts: Sequence[Any] | None = None,
    control_texts: Sequence[Any] | None = None,
    share: float = SHARE,
) -> list[SharedPassage]:
    """Passages (anything with ``id`` and ``text``) of either side whose text is mostly found verbatim on the
    other side (module docstring); suspect passages first. ``suspect_texts`` / ``control_texts``: the whole
    texts the passages were cut from (anything with ``id`` and ``text``), searched instead of the passages so
    that a copy cut in two by a passage boundary is still found. k and window: :func:`sizes_for` the passages.

    >>> from types import SimpleNamespace as P
    >>> book = "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age " * 3
    >>> suspect = [P(id="s0", text=book), P(id="s1", text="An entirely different sentence about ships and sails.")]
    >>> control = [P(id="c0", text="Quoted: " + book[20:200]), P(id="c1", text="Nothing in common here at all.")]
    >>> [(s.side, s.passage, s.other) for s in shared_passages(suspect, control)]
    [('suspect', 's0', 'c0'), ('control', 'c0', 's0')]
    """
    k, window = sizes_for([*suspect, *control])
    found: list[SharedPassage] = []
    sides = (("suspect", suspect, control_texts or control), ("control", control, suspect_texts or suspect))
    for side, passages, others in sides:
        index = _index(others, k, window)
        for passage in passages:
            prints = fingerprints(passage.text, k=k, window=window)
            hits = [index[value] for value in prints if value in index]
            if prints and len(hits) / len(prints) >= share:
                found.append(SharedPassage(side, passage.id, min(hits), len(hits) / len(prints)))
    return found
