"""Neighbourhood attack: is the text much more likely than texts one small edit away from it?"""

from __future__ import annotations

import numpy as np

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.params import Interval, Text
from llm_mia.scoring.scorers.registry import ScoreUnavailable, register


@register(
    "neighbourhood",
    opt_in=True,
    cost="+n passes per text (one per neighbour)",
    constraints={"n": Interval(int, 1, None), "generator": Text(), "seed": Interval(int)},
)
def neighbourhood(
    target: TokenStats,
    target_neighbours: tuple,
    *,
    n: int = 25,
    generator: str = "word-swap",
    seed: int = 0,
) -> float:
    """Neighbourhood: mean NLL(neighbours) - NLL(x); default neighbours: word swaps [variant]; MLM: generator=PATH.

    score = mean over neighbours of NLL(neighbour) - NLL(x).

    A member sits in a dip of the loss surface: the model finds it much more likely than texts a small edit
    away, which an unseen text of the same difficulty does not show. Direction: higher = more likely member.
    ``generator``: ``word-swap`` (default, no model: each neighbour swaps one pair of adjacent words; a variant,
    labelled so) or the path of a local masked language model (the published method: one token replaced by the
    masked model's most probable candidates under the embedding-dropout trick); ``n`` neighbours (default 25,
    fewer when a text allows fewer), ``seed`` for the choice. Neighbours are generated once per run, kept in
    ``<cache>/neighbours/`` and scored by the same batched engine as any text (see ``llm_mia.scoring.neighbours``).
    Source: Mattern et al. 2023, "Membership Inference Attacks against Language Models via Neighbourhood
    Comparison" (Findings of ACL). Example: NLL(x) = 2.0, neighbours 2.5 and 3.1 -> 0.8.
    """
    stats = require_scored(target)
    usable = [s for s in target_neighbours if s.ok and s.n_scored]
    if not usable:
        raise ScoreUnavailable("no neighbour could be made or scored (a text of one word has no word pair to swap)")
    return float(np.mean([s.nll for s in usable])) - stats.nll
