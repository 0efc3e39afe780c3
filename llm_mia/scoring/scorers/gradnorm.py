"""GradNorm: how steep the loss surface is at a text (members sit nearer a minimum)."""

from __future__ import annotations

import math

from llm_mia.backends.token_stats import TokenStats
from llm_mia.scoring.scorers._checks import require_scored
from llm_mia.scoring.scorers.params import Options
from llm_mia.scoring.scorers.registry import ScoreUnavailable, register

NORMS = {1.0: 0, 2.0: 1, math.inf: 2}


@register(
    "gradnorm",
    opt_in=True,
    cost="+1 forward and backward pass per text, one at a time, not cached",
    constraints={"p": Options(float, tuple(NORMS))},
)
def gradnorm(target_gradient: TokenStats, *, p: float = 2.0) -> float:
    """GradNorm: score = -||grad_theta L(x)||_p, L(x) = the text's mean token NLL, over all parameters theta.

    Training drives the loss of its texts towards a minimum, where the gradient is small; an unseen text sits
    on a steeper slope. Direction: higher (a smaller gradient) = more likely member; checked on a model trained
    on one text and not on another (tests/test_gradnorm.py). ``p``: 1, 2 (default) or inf, the norm of the
    whole gradient as one vector. Source: MIMIR (Duan et al. 2024, ``attacks/gradnorm.py``). Deviation: MIMIR
    averages the 2-norms of the parameter tensors one by one; here the norm is of the whole gradient (for p = 2,
    the root of the sum of the per-tensor squares), which does not weigh a small bias vector like a large matrix.
    Needs the weights (a white-box model): a backward pass per text (see ``llm_mia.engine.gradients``).
    Example: a gradient (3, -4) gives -7 (p = 1), -5 (p = 2), -4 (p = inf).
    """
    stats = require_scored(target_gradient)
    if stats.gradient_norms is None:
        raise ScoreUnavailable("no gradient was computed for this text")
    if p not in NORMS:
        raise ScoreUnavailable(f"p must be 1, 2 or inf, got {p}")
    return -stats.gradient_norms[NORMS[p]]
