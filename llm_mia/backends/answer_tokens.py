"""The token a model writes for each answer of a multiple-choice prompt (DE-COP's letters), from its tokenizer.

After a prompt ending in ``Answer:`` a model writes an answer as one token: " A" where the tokenizer has that as
one token, else "A". A local model reads each answer's log-prob at that token
(:meth:`llm_mia.backends.local.LoadedModel.next_token_logprobs`); an endpoint that reports the exact log-prob of a
forced token is asked for the same tokens (:mod:`llm_mia.backends.remote.answers`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def answer_token_ids(encode: Callable[[str], list[int]], answers: Sequence[str]) -> list[int] | None:
    """The token id a model writes for each of ``answers`` after ``Answer:`` (" A" when that is one token, else
    "A"); None when an answer is neither. ``encode``: text -> token ids, without special tokens.

    >>> answer_token_ids(lambda text: [ord(c) for c in text.strip()], ("A", "B", "C", "D"))
    [65, 66, 67, 68]
    >>> answer_token_ids(lambda text: [ord(c) for c in text], ("A", "BB")) is None
    True
    """
    ids = []
    for answer in answers:
        tokens = encode(f" {answer}")
        if len(tokens) != 1:
            tokens = encode(answer)
        if len(tokens) != 1:
            return None
        ids.append(tokens[0])
    return ids
