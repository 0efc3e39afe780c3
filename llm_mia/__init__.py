"""llm-mia: membership inference for language models.

Was a text in a model's training data? Scorers read one forward pass per (model, text variant) and give
higher scores to likelier members; calibration and dataset-level tests turn scores into verdicts.

    >>> import llm_mia
    >>> frame = llm_mia.score(["Some text."], model="smollm2-135m")  # doctest: +SKIP

The names below load on first use (``import llm_mia`` itself imports neither torch nor the engine), so
commands and scripts that only read score files start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "score": "llm_mia.api",
    "Columns": "llm_mia.io.documents",
    "Document": "llm_mia.io.documents",
    "read_documents": "llm_mia.io.documents",
    "ExtractionSettings": "llm_mia.engine.extraction_settings",
    "ModelSettings": "llm_mia.backends.loading",
    "ScoringSettings": "llm_mia.scoring.settings",
    "ModelSpec": "llm_mia.backends.local",
    "load_model": "llm_mia.backends.local",
    "TokenStats": "llm_mia.backends.token_stats",
    "score_documents": "llm_mia.workflows.score",
    "evaluate_table": "llm_mia.workflows.evaluate",
    "calibrate_score_file": "llm_mia.workflows.calibrate",
    "judge_score_file": "llm_mia.workflows.calibrate",
    "run_dataset_test": "llm_mia.workflows.dataset",
    "run_benchmark": "llm_mia.workflows.benchmark",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'llm_mia' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
