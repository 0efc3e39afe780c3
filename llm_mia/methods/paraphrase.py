"""Paraphrases for DE-COP written by a model the user names, once, and kept.

Each passage without paraphrases gets ``N_PARAPHRASES`` of them: the model is asked (``INSTRUCTION``; through
its chat template when it has one) and sampled at temperature ``TEMPERATURE`` with seeds 0, 1, 2, ...; a
candidate is kept when, after trimming (first paragraph, surrounding quotes), it is non-empty, differs from the
passage and from the paraphrases kept so far, and has at least half and at most twice the passage's words
(DE-COP's options should be alike in length, or length gives the answer away). After ``MAX_TRIES`` seeds without
three, the passage is named in an error (write its paraphrases by hand). The paraphrases are written to a quiz
file before any question is asked, with the model and seeds in the run record, so the quiz can be re-run and
checked without the paraphrasing model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from llm_mia.errors import InputError
from llm_mia.methods.decop import N_PARAPHRASES, QuizPassage

INSTRUCTION = "Rewrite the following passage in your own words, keeping its meaning and its length:\n\n"
TEMPERATURE = 0.8
MAX_TRIES = 12


def clean(candidate: str) -> str:
    """The first paragraph of a model's answer, without surrounding whitespace and quotes.

    >>> clean('  "The cat sat."\\n\\nI hope this helps!')
    'The cat sat.'
    """
    first = candidate.strip().split("\n\n")[0].strip()
    return first.strip('"\u201c\u201d').strip()


def acceptable(candidate: str, passage: str, kept: Sequence[str]) -> bool:
    """Non-empty, not the passage, not a repeat, and within half to twice the passage's length in words."""
    words, target = len(candidate.split()), len(passage.split())
    return (
        bool(candidate) and candidate != passage.strip() and candidate not in kept and target / 2 <= words <= 2 * target
    )


def write_paraphrases(
    passages: Sequence[QuizPassage], generate: Callable[[str, int], str]
) -> tuple[list[QuizPassage], dict[str, list[int]]]:
    """Passages with paraphrases filled in by ``generate(passage text, seed)``; and the seeds kept per passage."""
    done, seeds = [], {}
    for passage in passages:
        if passage.paraphrases:
            done.append(passage)
            continue
        kept: list[str] = []
        used: list[int] = []
        for seed in range(MAX_TRIES):
            candidate = clean(generate(passage.text, seed))
            if acceptable(candidate, passage.text, kept):
                kept.append(candidate)
                used.append(seed)
            if len(kept) == N_PARAPHRASES:
                break
        if len(kept) < N_PARAPHRASES:
            raise InputError(
                f"passage {passage.id!r}: the paraphrasing model gave {len(kept)} usable paraphrase(s) in {MAX_TRIES} "
                "tries (empty, a copy, a repeat, or of a very different length); write its paraphrases by hand"
            )
        done.append(replace(passage, paraphrases=tuple(kept)))
        seeds[passage.id] = used
    return done, seeds
