"""DC-PDD: token probabilities calibrated by how rare each token is in a reference corpus."""

from __future__ import annotations

from typing import Any

import numpy as np

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.params import Interval, Text
from llm_mia.scoring.scorers.registry import ScoreUnavailable, register
from llm_mia.scoring.token_frequencies import FrequencyTable


def _prepare(model: Any, *, a: float = 0.01, corpus: str = "wikipedia") -> FrequencyTable:
    """Build (or read from the disk cache) the frequency table for the model's tokenizer and ``corpus``."""
    from llm_mia.errors import InputError
    from llm_mia.scoring.token_frequencies import table_for

    if getattr(model, "tokenizer", None) is None or not hasattr(model, "tokenizer_id"):
        raise InputError("dc_pdd needs the model's own tokenizer to count token frequencies; this model has none")
    return table_for(model.tokenizer, model.tokenizer_id, corpus)


@register(
    "dc_pdd",
    needs=("logprob", "token_ids"),
    prepare=_prepare,
    opt_in=True,
    cost="+ token-frequency table (once)",
    constraints={"a": Interval(float, 0, None, closed="neither"), "corpus": Text()},
)
def dc_pdd(
    target: TokenStats, *, a: float = 0.01, corpus: str = "wikipedia", prepared: FrequencyTable | None = None
) -> float:
    """DC-PDD: score = mean over the first occurrence of each distinct token x_i of min(p(x_i) * log(1/f(x_i)), a).

    p(x_i) = exp(l_i), the model's probability of the token; f(x_i) = (1 + c) / (N + V), the token's Laplace-
    smoothed frequency in a reference corpus (``corpus``: ``wikipedia``, the packaged Wikipedia summaries, or a
    documents file; the table is built once per tokenizer and corpus, before any text is scored, and cached, see
    ``llm_mia.scoring.token_frequencies``). The paper counts frequencies on C4, which does not install offline; the
    default here is 906k words of Wikipedia lead paragraphs, so numbers differ from the paper's where the two
    corpora's token frequencies do. A likely token that is rare in general text is evidence of memorisation; a
    likely token that is common everywhere is not. Each distinct token counts once (its first scored
    occurrence), and each term is clipped at ``a`` (default 0.01, as the authors' code) so a few tokens cannot
    dominate. Direction: higher = more likely member (the authors' beta, unchanged). Source: Zhang et al. 2024,
    "Pretraining Data Detection for Large Language Models: A Divergence-based Calibration Method" (EMNLP), and
    their code, which clips at the upper bound and keeps first occurrences; it reads only the target's own pass.
    ``prepared``: the frequency table the run built for the target's tokenizer and ``corpus`` (not a
    hyperparameter: the run passes it).
    Example: l = [ln 0.5, ln 0.1, ln 0.5] on tokens [7, 8, 7] with f = [e^-2, e^-1] -> first occurrences 7, 8 ->
    terms [0.5 * 2, 0.1 * 1] = [1.0, 0.1], clipped at a = 0.5 -> [0.5, 0.1] -> score 0.3.
    """
    stats = require_scored(target)
    table = prepared
    if table is None or table.tokenizer_id != stats.tokenizer_id:
        raise ScoreUnavailable(
            f"no token-frequency table for tokenizer {stats.tokenizer_id} and corpus {corpus!r} in this run"
        )
    if not a > 0:
        raise ScoreUnavailable(f"a must be > 0, got {a}")
    ids = stats.token_ids.astype(np.int64)
    if ids.min() < 0 or ids.max() >= len(table.counts):
        raise ScoreUnavailable("token ids outside the frequency table's vocabulary (another tokenizer?)")
    _, first = np.unique(ids, return_index=True)
    first = np.sort(first)
    probability = np.exp(stats.logprob.astype(np.float64)[first])
    alpha = probability * -np.log(table.frequencies()[ids[first]])
    return float(np.mean(np.minimum(alpha, a)))
