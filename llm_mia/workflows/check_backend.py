"""Agreement check: the same texts through a model behind an API and through the white-box engine.

An API's numbers are not trusted until they have been compared, once, with white-box scores of the same
weights (a GGUF served by llama.cpp against the same GGUF loaded here; a vLLM server against its checkpoint).
For each text: the per-token log-probs side by side where both sides cut the text into the same tokens (same
count, and the same ids where the API reports them), and every score both can compute. The endpoint agrees
when every text's mean token log-likelihood (the ``loss`` score) differs by at most ``tolerance`` nats per
token. The result is stored (``<cache>/backend-checks/``) and every later run record of the endpoint cites it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_mia.backends.loading import ModelSettings
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document

DEFAULT_TOLERANCE = 0.02  # nats per token, on the mean: quantised kernels against float32 dequantised weights
CHECK_SCORERS = ("loss", "zlib", "min_k")


@dataclass
class BackendCheck:
    """Per-text and per-score differences between an API and white-box scores of the same texts."""

    endpoint: dict[str, Any]
    local: dict[str, Any]
    tolerance: float
    texts: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    checked_at: str = ""

    @property
    def agrees(self) -> bool:
        return bool(self.texts) and all(
            row["loss_difference"] is not None and abs(row["loss_difference"]) <= self.tolerance for row in self.texts
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "agrees": self.agrees,
            "tolerance_nats_per_token": self.tolerance,
            "endpoint": self.endpoint,
            "local": self.local,
            "texts": self.texts,
            "scores": self.scores,
        }

    @property
    def record(self) -> dict[str, Any]:
        """What the stored check holds (:meth:`to_dict`)."""
        return self.to_dict()

    def summary_lines(self) -> list[str]:
        """Per text the token counts and differences, per score the largest and mean difference, the verdict."""
        return self.describe()

    def describe(self) -> list[str]:
        lines = [f"{'text':<16} {'tokens api/local':>17} {'loss diff':>10} {'max |token diff|':>17} {'mean':>8}"]
        for row in self.texts:
            tokens = f"{row['n_scored_api']}/{row['n_scored_local']}"
            token_max = "-" if row["token_max_abs"] is None else f"{row['token_max_abs']:.4f}"
            token_mean = "-" if row["token_mean_abs"] is None else f"{row['token_mean_abs']:.4f}"
            loss = "-" if row["loss_difference"] is None else f"{row['loss_difference']:+.4f}"
            lines.append(f"{row['id'][:16]:<16} {tokens:>17} {loss:>10} {token_max:>17} {token_mean:>8}")
        for name, summary in self.scores.items():
            lines.append(f"{name}: largest difference {summary['max_abs']:.4f}, mean {summary['mean_abs']:.4f}")
        verdict = "agrees" if self.agrees else "DOES NOT AGREE"
        lines.append(
            f"{verdict}: every text's loss within {self.tolerance:g} nats/token of the white-box engine"
            if self.agrees
            else f"{verdict}: some text's loss differs by more than {self.tolerance:g} nats/token (or was not scored)"
        )
        return lines


def _token_comparison(api: Any, local: Any) -> tuple[float | None, float | None]:
    if not (api.ok and local.ok) or api.n_scored != local.n_scored:
        return None, None
    known = api.token_ids >= 0
    if known.any() and not np.array_equal(api.token_ids[known], local.token_ids[known]):
        return None, None
    difference = np.abs(api.logprob.astype(np.float64) - local.logprob.astype(np.float64))
    return float(difference.max()), float(difference.mean())


def check_backend(
    remote: ModelSettings,
    local: str,
    documents: Sequence[Document],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    cache: bool = True,
    save: bool = True,
) -> BackendCheck:
    """Score ``documents`` through ``remote.model`` (``api:NAME``) and through ``local``; compare (module docstring).

    ``save``: store the result where run records of this endpoint find it.
    """
    from llm_mia.backends.loading import capabilities_of
    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.backends.remote.model import agreement_path, connect
    from llm_mia.engine.stats_cache import StatsCache, default_cache_path
    from llm_mia.scoring.pipeline import compute_scores
    from llm_mia.scoring.scorers import parse_scorer_specs

    if not capabilities_of(remote.model).endpoint or remote.api is None:
        raise LlmMiaError("check-backend compares a model behind an API (--model api:NAME --api-base URL) with --local")
    if tolerance <= 0:
        raise LlmMiaError(f"tolerance must be > 0 nats/token, got {tolerance}")
    if not documents:
        raise LlmMiaError("check-backend needs at least one text")
    endpoint = connect(ModelSpec(name=remote.model), remote.api)
    white_box = load_model(ModelSpec(name=local, dtype=remote.dtype, device=remote.device))
    calls = parse_scorer_specs(list(CHECK_SCORERS), has_reference=False, arrays=("logprob",))
    settings = ExtractionSettings(progress=False)
    stats_cache = StatsCache(default_cache_path()) if cache else None
    scored = compute_scores(documents, calls, models={"target": endpoint}, settings=settings, cache=stats_cache)
    api_rows, api_stats = scored.rows, scored.stats
    scored = compute_scores(documents, calls, models={"target": white_box}, settings=settings, cache=stats_cache)
    local_rows, local_stats = scored.rows, scored.stats
    result = BackendCheck(
        endpoint=endpoint.describe(),
        local=white_box.describe(),
        tolerance=tolerance,
        checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    result.endpoint.pop("agreement_check", None)
    for document, api_row, local_row, api, mine in zip(
        documents, api_rows, local_rows, api_stats["target"], local_stats["target"], strict=True
    ):
        token_max, token_mean = _token_comparison(api, mine)
        loss_difference = (
            None if api_row["loss"] is None or local_row["loss"] is None else api_row["loss"] - local_row["loss"]
        )
        result.texts.append(
            {
                "id": document.id,
                "n_scored_api": api.n_scored,
                "n_scored_local": mine.n_scored,
                "loss_api": api_row["loss"],
                "loss_local": local_row["loss"],
                "loss_difference": loss_difference,
                "token_max_abs": token_max,
                "token_mean_abs": token_mean,
            }
        )
    for call in calls:
        differences = [
            abs(a[call.column] - b[call.column])
            for a, b in zip(api_rows, local_rows, strict=True)
            if a[call.column] is not None and b[call.column] is not None
        ]
        if differences:
            result.scores[call.column] = {"max_abs": max(differences), "mean_abs": float(np.mean(differences))}
    if save:
        path = agreement_path(remote.api.root, endpoint.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result
