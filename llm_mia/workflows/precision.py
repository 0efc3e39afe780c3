"""What a lower precision costs on the user's own texts: the precision check.

Running the model in bfloat16 or float16 is faster where the hardware has fast half-precision arithmetic, and
moves every score a little (log-softmax and every reduction stay float32 whatever the dtype; the weights,
activations and matrix products do not). How much it moves depends on the model and the texts, so it is
measured, not assumed: :func:`precision_check` scores a seeded sample of the user's documents in the requested
dtype and in float32, with the same scorers, windows and batches, and reports per scorer

* the largest absolute difference between a document's two scores, max_i |s_dtype(i) - s_float32(i)|;
* Spearman's rank correlation of the two (a membership score is a ranking: what matters is whether the order of
  the documents survives);
* with labels, the AUROC under each precision (DeLong intervals on the float32 one), so a user sees whether a
  known-split result would change;

and the seconds each precision took on this machine (the same documents; the first precision scored pays no
warm-up the other escapes, since each loads its own model).

The check is the price of a choice, not a guarantee for texts outside the sample: the sample's size is printed
with it. Evidence must name its precision with this check before any score is seen (``llm-mia plan``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from llm_mia.errors import InputError
from llm_mia.io.documents import Document
from llm_mia.scoring.settings import ScoringSettings

REFERENCE_DTYPE = "float32"


@dataclass(frozen=True)
class ScorerFidelity:
    """One scorer's scores under the requested dtype against float32 (module docstring)."""

    scorer: str
    documents: int
    max_abs_difference: float
    spearman: float
    auroc_float32: float | None = None
    auroc_float32_ci: tuple[float, float] | None = None
    auroc_dtype: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # the interval as a list, in its field's place (a key given again keeps its first position)
        return {**asdict(self), "auroc_float32_ci": list(self.auroc_float32_ci) if self.auroc_float32_ci else None}


@dataclass(frozen=True)
class PrecisionCheck:
    """The result of :func:`precision_check`: per scorer fidelity, the sample, and the seconds per precision."""

    dtype: str
    sampled: int
    of: int
    seed: int
    scorers: tuple[ScorerFidelity, ...]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "reference_dtype": REFERENCE_DTYPE,
            "sampled": self.sampled,
            "of": self.of,
            "seed": self.seed,
            "scorers": [s.to_dict() for s in self.scorers],
            "seconds": dict(self.seconds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrecisionCheck:
        """The check as :meth:`to_dict` wrote it (a run record, a plan)."""
        scorers = tuple(
            ScorerFidelity(
                **{
                    **s,
                    "auroc_float32_ci": tuple(s["auroc_float32_ci"]) if s.get("auroc_float32_ci") else None,
                }
            )
            for s in data["scorers"]
        )
        return cls(data["dtype"], data["sampled"], data["of"], data["seed"], scorers, dict(data["seconds"]))

    def lines(self) -> list[str]:
        """The check in words and a table, for the terminal and the report."""
        speed = self.seconds[REFERENCE_DTYPE] / self.seconds[self.dtype] if self.seconds[self.dtype] > 0 else math.nan
        lines = [
            f"precision check: {self.sampled} of {self.of} document(s) (seeded sample, seed {self.seed}) scored in "
            f"{self.dtype} and in {REFERENCE_DTYPE}: {self.seconds[self.dtype]:.1f} s against "
            f"{self.seconds[REFERENCE_DTYPE]:.1f} s ({speed:.2f}x on this machine)",
            f"  {'scorer':<28} {'largest |difference|':>20} {'rank correlation':>17}  AUROC float32 -> " + self.dtype,
        ]
        for s in self.scorers:
            area = "-"
            if s.auroc_float32 is not None and s.auroc_dtype is not None:
                low, high = s.auroc_float32_ci or (math.nan, math.nan)
                area = f"{s.auroc_float32:.3f} [{low:.3f}, {high:.3f}] -> {s.auroc_dtype:.3f}"
            lines.append(f"  {s.scorer:<28} {s.max_abs_difference:>20.4g} {s.spearman:>17.4f}  {area}")
        lines.append(
            "  (differences on this sample only; a score is a ranking, so the rank correlation says whether the "
            "order of the documents survives)"
        )
        return lines


def sample_documents(documents: Sequence[Document], size: int, seed: int) -> list[int]:
    """The indices of a seeded sample of ``size`` documents (all of them when there are no more), in input order.

    >>> sample_documents([Document(id=str(i), text="x") for i in range(5)], 10, seed=0)
    [0, 1, 2, 3, 4]
    >>> len(sample_documents([Document(id=str(i), text="x") for i in range(50)], 8, seed=0))
    8
    """
    if size <= 0:
        raise InputError(f"--precision-check needs a positive number of documents, not {size}")
    if size >= len(documents):
        return list(range(len(documents)))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(len(documents), size=size, replace=False))


def fidelity(
    scorer: str, low: Sequence[float], full: Sequence[float], labels: Sequence[int] | None = None
) -> ScorerFidelity:
    """Compare one scorer's scores in the requested dtype (``low``) with float32 (``full``); documents whose score
    is missing under either are left out.

    >>> f = fidelity("loss", [1.0, 2.0, 3.5], [1.0, 2.1, 3.0])
    >>> round(f.max_abs_difference, 3), f.spearman
    (0.5, 1.0)
    """
    from scipy.stats import spearmanr

    from llm_mia.stats.metrics import auroc, auroc_interval

    a, b = np.asarray(low, dtype=float), np.asarray(full, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2:
        return ScorerFidelity(scorer, len(a), math.nan, math.nan)
    rho = float(spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else math.nan
    result = ScorerFidelity(scorer, len(a), float(np.max(np.abs(a - b))), rho)
    if labels is not None:
        y = np.asarray(labels)[keep]
        if 0 < y.sum() < len(y):
            low_ci, high_ci, _ = auroc_interval(b, y)
            result = replace(
                result,
                auroc_float32=float(auroc(b, y)),
                auroc_float32_ci=(float(low_ci), float(high_ci)),
                auroc_dtype=float(auroc(a, y)),
            )
    return result


def precision_check(
    documents: Sequence[Document],
    settings: ScoringSettings,
    *,
    size: int = 64,
    seed: int = 0,
    labels: Sequence[int] | None = None,
) -> PrecisionCheck:
    """Score a seeded sample of ``documents`` in ``settings``' dtype and in float32 and compare (module docstring).

    ``size``: documents in the sample; ``labels``: 1 member / 0 non-member per document of ``documents`` (the
    AUROC under each precision). The stats cache is not used, so both precisions are computed and timed here.
    """
    from llm_mia.workflows.score import score_documents

    dtype = settings.models.dtype
    if dtype == REFERENCE_DTYPE:
        raise InputError(
            "the precision check compares another dtype with float32: give --dtype bfloat16, float16 or mixed"
        )
    if settings.models.remote_names:
        raise InputError("a model behind an API computes in its server's precision: the check needs a local model")
    picked = sample_documents(documents, size, seed)
    sample = [documents[i] for i in picked]
    sample_labels = [labels[i] for i in picked] if labels is not None else None
    rows, seconds = {}, {}
    for precision in (dtype, REFERENCE_DTYPE):
        run_settings = replace(settings, models=replace(settings.models, dtype=precision), cache=False)
        started = time.perf_counter()
        rows[precision] = score_documents(sample, run_settings, source="precision check").rows
        seconds[precision] = time.perf_counter() - started
    columns = [c.column for c in settings.calls]
    scorers = tuple(
        fidelity(
            column,
            [_score(row, column) for row in rows[dtype]],
            [_score(row, column) for row in rows[REFERENCE_DTYPE]],
            sample_labels,
        )
        for column in columns
    )
    return PrecisionCheck(dtype, len(sample), len(documents), seed, scorers, seconds)


def _score(row: dict[str, Any], column: str) -> float:
    value = row.get(column)
    return math.nan if value is None else float(value)
