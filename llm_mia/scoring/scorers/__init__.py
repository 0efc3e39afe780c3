"""Membership scorers: pure functions over TokenStats, registered by name. Higher score = more likely member.

Importing this package registers the built-in scorers; ``registry.all_scorers()`` lists them.
"""

# isort: off
# registration side effect, in the order `llm-mia list` shows them
from llm_mia.scoring.scorers import likelihood, min_k, reference  # noqa: F401
from llm_mia.scoring.scorers import dc_pdd, gradnorm, neighbourhood, recall  # noqa: F401

# isort: on
from llm_mia.scoring.scorers.registry import (
    VIEWS,
    Scorer,
    ScorerCall,
    ScoreUnavailable,
    all_scorers,
    get_scorer,
    parse_scorer_specs,
    register,
)

__all__ = [
    "VIEWS",
    "ScoreUnavailable",
    "Scorer",
    "ScorerCall",
    "all_scorers",
    "get_scorer",
    "parse_scorer_specs",
    "register",
]
