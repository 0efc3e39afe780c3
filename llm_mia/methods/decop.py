"""DE-COP: does the model pick a work's verbatim passage out of paraphrases of it?

Duarte, Zhao, Oliveira and Li, "DE-COP: Detecting Copyrighted Content in Language Models Training Data"
(ICML 2024, arXiv 2402.09910; reference code github.com/avduarte333/DE-COP_Method). For each passage x with
paraphrases p_1..p_3, a multiple-choice question lists the four texts as options A-D and asks which one is
verbatim from the work; it is asked in all 4! = 24 orders of the options, so a model's preference for a letter
cancels out. With the log-probabilities l_A..l_D the model gives the four answer letters at the answer position,
each ordering's probability of the verbatim option is the softmax over the four letters,

    P_o(verbatim) = exp(l_v) / sum_{c in A..D} exp(l_c),

and the passage's score is its mean over the orderings (chance: 0.25); higher = more likely the model saw the
passage. ``decop_accuracy`` is the share of orderings whose most probable letter is the verbatim one (the score
when an endpoint returns no log-probs for the answer).

As published, with these stated choices: the prompt is the reference code's BookTection question (``subject``
names the work, e.g. ``the "Cymbeline" play by William Shakespeare``), without its Llama-2 chat wrapper, since
the models here are completion models (an ``api:`` chat endpoint gets the reference system prompt as a system
message); the answer letter is read as the single token the model would write after ``Answer:`` (" A" where the
tokenizer has it as one token, else "A"). A DE-COP score is a ranking like any other score: the paper's book-level
decision compares suspect books with books published after the model's cutoff, and so does llm-mia: the rows go
to ``evaluate``, ``calibrate`` or the dataset-level test with control works, never to a threshold at 0.25.
Paraphrases written by a weaker model are often less fluent than the original, which a model prefers without
having seen it; only the comparison with controls paraphrased the same way answers that.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from llm_mia.errors import InputError

LETTERS = ("A", "B", "C", "D")
N_PARAPHRASES = len(LETTERS) - 1
QUESTION = "Question: Which of the following passages is verbatim from {subject}?\nOptions:\n"
SYSTEM_PROMPT = (
    "You are entering a multiple choice questions exam. You should directly answer each question by choosing "
    "the correct option. Be concise and straight to the point in your answer. Output only the letter "
    "corresponding to the correct answer."
)


@dataclass(frozen=True)
class QuizPassage:
    """A passage, its paraphrases, and the label and work it belongs to (as a score row carries them)."""

    id: str
    text: str
    paraphrases: tuple[str, ...]
    label: int | None = None
    group: str | None = None


def orderings() -> list[tuple[int, ...]]:
    """Every order of the four options; option 0 is the verbatim passage, 1-3 its paraphrases.

    >>> len(orderings()), orderings()[1]
    (24, (0, 1, 3, 2))
    """
    return list(itertools.permutations(range(len(LETTERS))))


def quiz_prompt(options: Sequence[str], subject: str) -> str:
    """The question with the options as A-D, ending in ``Answer:`` (the reference code's layout).

    >>> print(quiz_prompt(["one", "two", "three", "four"], 'the "X" book by Y'))
    Question: Which of the following passages is verbatim from the "X" book by Y?
    Options:
    A. one
    B. two
    C. three
    D. four
    <BLANKLINE>
    Answer:
    """
    lines = "".join(f"{letter}. {option}\n" for letter, option in zip(LETTERS, options, strict=True))
    return QUESTION.format(subject=subject) + lines + "\nAnswer:"


def quizzes(passage: QuizPassage, subject: str) -> list[tuple[str, int]]:
    """(prompt, index of the verbatim letter) for each of the 24 orderings of one passage."""
    texts = (passage.text, *passage.paraphrases)
    return [(quiz_prompt([texts[i] for i in order], subject), order.index(0)) for order in orderings()]


def passage_scores(letter_logprobs: ArrayLike, answers: ArrayLike) -> tuple[float, float]:
    """(mean probability of the verbatim letter, share of orderings where it is the most probable).

    ``letter_logprobs``: (orderings, 4) log-probabilities of A-D at the answer position; -inf where the letter
    is not among what an endpoint returned. The probability is renormalised over the four letters (float64).

    >>> passage_scores(np.log(np.array([[0.5, 0.2, 0.2, 0.1], [0.1, 0.7, 0.1, 0.1]])), [0, 0])
    (0.3, 0.5)
    """
    values = np.asarray(letter_logprobs, dtype=np.float64)
    answers = np.asarray(answers)
    top = values.max(axis=1, keepdims=True)
    weights = np.exp(values - top)
    probabilities = weights / weights.sum(axis=1, keepdims=True)
    verbatim = probabilities[np.arange(len(answers)), answers]
    chosen = values.argmax(axis=1) == answers
    return round(float(verbatim.mean()), 12), float(chosen.mean())


def read_quiz_passages(path: str | Path, *, require_paraphrases: bool = True) -> list[QuizPassage]:
    """Passages with their paraphrases from JSONL: ``{"id", "text", "paraphrases": [3 strings], "label"?, "group"?}``.

    With ``require_paraphrases=False`` a row may leave ``paraphrases`` out (they are to be written by a model).
    Every problem names the file and line and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (DE-COP reads JSONL rows with id, text and paraphrases)")
    passages, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise InputError(f"{path}:{number}: not JSON ({error})") from None
        where = f"{path}:{number}"
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise InputError(f"{where}: each row needs a non-empty 'text'")
        paraphrases = row.get("paraphrases")
        if paraphrases is None and not require_paraphrases:
            paraphrases = []
        elif (
            not isinstance(paraphrases, list)
            or len(paraphrases) != N_PARAPHRASES
            or not all(isinstance(p, str) and p.strip() for p in paraphrases)
        ):
            raise InputError(
                f"{where}: 'paraphrases' must be a list of {N_PARAPHRASES} non-empty strings (DE-COP asks with four "
                "options); write them yourself or let `llm-mia decop --paraphrase-model` write them"
            )
        if any(p.strip() == row["text"].strip() for p in paraphrases or []):
            raise InputError(f"{where}: a paraphrase equals the passage; the question would have two right answers")
        identifier = str(row.get("id", number))
        if identifier in seen:
            raise InputError(f"{where}: id {identifier!r} appears twice")
        seen.add(identifier)
        label = row.get("label")
        passages.append(
            QuizPassage(
                id=identifier,
                text=row["text"],
                paraphrases=tuple(p.strip() for p in paraphrases),
                label=None if label is None else int(label),
                group=row.get("group"),
            )
        )
    if not passages:
        raise InputError(f"{path}: no passages")
    return passages


def write_quiz_passages(passages: Sequence[QuizPassage], path: str | Path) -> Path:
    """Write passages with their paraphrases as JSONL that :func:`read_quiz_passages` reads back."""
    rows = [
        {"id": p.id, "text": p.text, "paraphrases": list(p.paraphrases), "label": p.label, "group": p.group}
        for p in passages
    ]
    path = Path(path)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path
