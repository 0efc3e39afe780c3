"""ReCaLL: how much a text's likelihood drops when it is read after known non-member text."""

from __future__ import annotations

import numpy as np

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.params import Interval, Options, Text
from llm_mia.scoring.scorers.registry import ScoreUnavailable, register

SEPARATORS = {"matched": "\n\n", "published": ""}  # what follows each prefix text, per convention


def _condition(*, prefix: str = "", shots: int = 0, convention: str = "matched") -> tuple[str, list[str]]:
    """The prefix P: the first ``shots`` texts of the file ``prefix`` (all when 0), each followed by a blank line
    (``convention="matched"``) or by nothing (``"published"``, as the authors' code joins them)."""
    from llm_mia.errors import InputError
    from llm_mia.io.documents import read_documents

    if convention not in SEPARATORS:
        raise InputError(f"recall: convention={convention!r}; choose one of {', '.join(SEPARATORS)}")
    if not prefix:
        raise InputError(
            "recall needs known non-member texts to read each document after: recall:prefix=FILE (any input "
            "format; texts disjoint from those scored), optionally ;shots=M for the first M of them"
        )
    texts = [d.text for d in read_documents(prefix)]
    if shots < 0 or shots > len(texts):
        raise InputError(f"recall: shots={shots}, but {prefix} holds {len(texts)} texts")
    chosen = texts[:shots] if shots else texts
    joined = "".join(text + SEPARATORS[convention] for text in chosen)
    if not joined:  # empty texts joined with nothing: nothing to read the documents after
        raise InputError(f"recall: the prefix texts in {prefix} are empty; give known non-member texts")
    return joined, chosen


@register(
    "recall",
    condition=_condition,
    opt_in=True,
    cost="prefix encoded once per run; +1 pass of each text after it",
    # an empty prefix is the default so that a run can supply one later (the benchmark's own non-members);
    # `condition` refuses it when none was given by then
    constraints={
        "prefix": Text(empty=True),
        "shots": Interval(int, 0, None),
        "convention": Options(str, tuple(SEPARATORS)),
    },
)
def recall(
    target: TokenStats, target_recall: TokenStats, *, prefix: str = "", shots: int = 0, convention: str = "matched"
) -> float:
    """ReCaLL: score = LL(x | P) / LL(x), LL = mean log-likelihood of x's own tokens (negative).

    P = the non-member texts of the file ``prefix`` (the first ``shots``; all when 0). Members lose more likelihood
    when read after non-member context, so LL(x | P) falls further below LL(x) and the ratio is larger: higher =
    more likely member. ``convention``: ``"matched"`` (the default) puts a blank line after each prefix text and
    takes both means over the same tokens of x (tokenized on its own; without a BOS the first token, which nothing
    predicts alone, is left out of both), so the ratio compares like with like; ``"published"`` follows the
    authors' code: prefix texts joined with nothing between them, and x's first token counted in LL(x | P) (where
    P predicts it) but not in LL(x) (where, without a BOS, nothing does), so the numerator holds one more token,
    usually a hard one, and the ratio moves with the text's length.
    P's key/value cache is computed once per run and repeated over every batch, not re-encoded per text as the
    authors' code does; a text too long for the window after P is windowed, each window read after the whole
    of P (windows shorter by P's length), and a P that leaves fewer than 2 tokens is refused. The prefix texts
    must be disjoint from the texts scored (overlap is refused: MIMIR takes them from the evaluated
    non-members, which leaks). Source: Xie et al. 2024, "ReCaLL: Membership Inference via Relative Conditional
    Log-Likelihoods" (EMNLP). Here the user's file and ``shots`` choose P (the authors' code takes known
    non-members of the benchmark and a number of shots).
    Example: LL(x) = -2.0, LL(x | P) = -2.5 -> 1.25.
    """
    alone = require_scored(target)
    after = require_scored(target_recall, what="text after the prefix")
    if convention == "published" and not alone.bos_added:
        # x's first token, predicted from P, counts in LL(x | P) only
        unconditional = float(np.mean(alone.logprob.astype(np.float64)))
        if unconditional == 0.0:
            raise ScoreUnavailable("LL(x) = 0: the ratio is undefined")
        return float(np.mean(after.logprob.astype(np.float64))) / unconditional
    conditional = after.logprob if alone.bos_added else after.logprob[1:]
    if conditional.shape != alone.logprob.shape:
        raise ScoreUnavailable("the text's tokens after the prefix do not match its tokens alone")
    unconditional = float(np.mean(alone.logprob.astype(np.float64)))
    if unconditional == 0.0:
        raise ScoreUnavailable("LL(x) = 0: the ratio is undefined")
    return float(np.mean(conditional.astype(np.float64))) / unconditional
