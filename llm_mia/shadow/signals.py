"""The documents x models signal matrix: every model's signal on every population document, and its file format.

Signals (one float per document and model): ``mean_ll``, the mean token log-likelihood (the attacks' signal,
see :mod:`llm_mia.shadow.attacks`); ``n_tokens``, the tokens scored; and any registered scorer that reads only the
model's own pass (``zlib``, ``min_k``...), named as the scorer's column. Stored as ``signals.npz`` (numpy arrays
only, read with ``allow_pickle=False``) beside ``signals.json`` (document ids, model names, which signal is which,
tokenizer ids), so nothing executable is ever loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError

MEAN_LL = "mean_ll"


@dataclass(frozen=True)
class SignalMatrix:
    """``values[name]``: a (documents, models) float array; ``inclusion``: (documents, models) bool, True where
    the model trained on the document (all False for documents no model trained on, such as RMIA's z)."""

    ids: tuple[str, ...]
    models: tuple[str, ...]
    values: Mapping[str, np.ndarray]
    inclusion: np.ndarray
    tokenizers: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        shape = (len(self.ids), len(self.models))
        if self.inclusion.shape != shape:
            raise InputError(f"inclusion matrix of shape {self.inclusion.shape}; the signals are {shape}")
        for name, values in self.values.items():
            if np.shape(values) != shape:
                raise InputError(f"signal {name!r} has shape {np.shape(values)}; expected {shape}")

    @property
    def n_models(self) -> int:
        return len(self.models)

    def signal(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise InputError(f"the signal matrix has no {name!r} (it holds {', '.join(self.values)})")
        return np.asarray(self.values[name], dtype=np.float64)

    def column(self, index: int) -> dict[str, np.ndarray]:
        """One model's signals (a target's view of its own column)."""
        return {name: np.asarray(values)[:, index] for name, values in self.values.items()}

    def select(self, models: Sequence[int]) -> SignalMatrix:
        """The matrix restricted to some models (columns), e.g. the first K of a larger population."""
        chosen = list(models)
        return SignalMatrix(
            ids=self.ids,
            models=tuple(self.models[i] for i in chosen),
            values={name: np.asarray(values)[:, chosen] for name, values in self.values.items()},
            inclusion=self.inclusion[:, chosen],
            tokenizers=tuple(self.tokenizers[i] for i in chosen) if self.tokenizers else (),
        )

    def save(self, stem: Path) -> list[Path]:
        """Write ``stem.npz`` and ``stem.json``; returns both paths."""
        stem.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"signal_{name}": np.asarray(values, dtype=np.float64) for name, values in self.values.items()}
        # numpy >= 2.1's stub reads **arrays as possibly naming its allow_pickle flag; passing that flag explicitly
        # would instead store an array of that name on numpy 1.26, which this project supports
        np.savez(stem.with_suffix(".npz"), inclusion=self.inclusion.astype(np.bool_), **arrays)  # type: ignore[arg-type]
        meta = {
            "format": "llm-mia shadow signals",
            "version": 1,
            "ids": list(self.ids),
            "models": list(self.models),
            "signals": list(self.values),
            "tokenizers": list(self.tokenizers),
        }
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return [stem.with_suffix(".npz"), stem.with_suffix(".json")]

    @classmethod
    def load(cls, stem: Path) -> SignalMatrix:
        meta_path, array_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
        for path in (meta_path, array_path):
            if not path.is_file():
                raise InputError(f"{path}: not found; run `llm-mia shadow score` first")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(array_path, allow_pickle=False) as stored:
            values = {name: stored[f"signal_{name}"] for name in meta["signals"]}
            inclusion = stored["inclusion"]
        return cls(
            ids=tuple(meta["ids"]),
            models=tuple(meta["models"]),
            values=values,
            inclusion=inclusion,
            tokenizers=tuple(meta.get("tokenizers") or ()),
        )


def signals_from_rows(rows: Sequence[Mapping[str, Any]], signals: Sequence[str]) -> dict[str, np.ndarray]:
    """One model's signals from its score rows (``llm_mia.scoring.pipeline.score_rows``): ``mean_ll`` = the ``loss``
    column
    (the mean token log-likelihood, -NLL: higher = member), ``n_tokens`` = the tokens scored,
    and each named scorer column; NaN where a document was not scored (its status is not ok)."""
    out: dict[str, list[float]] = {MEAN_LL: [], "n_tokens": [], **{name: [] for name in signals}}
    for row in rows:
        ok = row.get("status") == "ok"
        loss = row.get("loss")
        out[MEAN_LL].append(float(loss) if ok and loss is not None else np.nan)
        out["n_tokens"].append(float(row["n_scored"]) if ok else np.nan)
        for name in signals:
            value = row.get(name)
            out[name].append(float(value) if ok and value is not None else np.nan)
    return {name: np.asarray(values, dtype=np.float64) for name, values in out.items()}
