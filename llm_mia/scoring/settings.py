"""Validated settings for scoring: which models, how texts are batched and windowed, which scorers, which cache.

``ScoringSettings`` holds a ``ModelSettings`` (``llm_mia.backends.loading``) and an ``ExtractionSettings``
(``llm_mia.engine.extraction_settings``), each defined in its layer.

Frozen dataclasses, checked on construction, importable without torch: a command builds its settings (and so
reports a bad scorer name, dtype or window) before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mia.backends.loading import ModelSettings
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError
from llm_mia.scoring.scorers import ScorerCall, parse_scorer_specs


@dataclass(frozen=True)
class ScoringSettings:
    """Everything that decides a score table: models, scorers, extraction settings, and the stats cache.

    ``scorers``: names or specs such as ``"min_k:k=0.1,0.2"`` (None: every scorer the models allow); parsed on
    construction, so an unknown name fails here. ``cache``: True for the default stats cache, False for none,
    or the path of a cache database. The cache never changes a number: a resumed run gives the same bits as
    an uninterrupted one. ``ray``: a ``llm_mia.scoring.ray_engine.RaySettings`` to score on Ray actors (None: here).
    """

    models: ModelSettings = field(default_factory=ModelSettings)
    scorers: tuple[str, ...] | None = None
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    cache: bool | str | Path = True
    ray: Any = None  # an llm_mia.scoring.ray_engine.RaySettings: score on Ray actors instead of in this process

    def __post_init__(self) -> None:
        if isinstance(self.scorers, str):
            raise LlmMiaError(f"scorers must be a sequence of names, not the string {self.scorers!r}")
        if self.scorers is not None:
            object.__setattr__(self, "scorers", tuple(self.scorers))
        self.calls  # noqa: B018  (parses and validates the scorer specs)

    @property
    def calls(self) -> list[ScorerCall]:
        """The scorer calls (one per column), in the order asked for."""
        # a target behind an API gives token log-probs only; a reference behind one serves only `reference`,
        # which reads nothing more, so it does not restrict what the target's scorers may read
        arrays = self.models.offers().token_arrays
        return parse_scorer_specs(
            list(self.scorers) if self.scorers else None,
            has_reference=bool(self.models.reference),
            arrays=arrays,
            provider=f"a model behind an API ({self.models.model})",
        )

    @property
    def cache_path(self) -> Path | None:
        """The cache database to use: None when off, else the given path or the default location."""
        if self.cache is False:
            return None
        if self.cache is True:
            from llm_mia.engine.stats_cache import default_cache_path

            return default_cache_path()
        return Path(self.cache)
