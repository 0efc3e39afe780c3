"""Which shadow model trains on which document: the inclusion matrix (documents x models, True = IN).

:func:`inclusion_matrix` draws it in complementary pairs, as PrivacyMeter's RMIA code pairs its reference models:
model 2j trains on a uniformly random half of the documents (exactly floor(n/2), its own permutation), and model
2j + 1 on the other half. So every model trains on exactly half the population, the halves of different pairs
are independent, and every document is IN for exactly K/2 of the first K models for every even K: the first 2,
4 or 8 of 16 trained models are a balanced population of their own, so one training run serves every K of a
table (LiRA's reference code draws a permutation of the models per document instead, which balances only the
full K). LiRA's per-document IN and OUT values each come from different pairs, so they stay independent draws.
Seeded: the same (n, K, seed) gives the same matrix on every machine (numpy's PCG64).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llm_mia.errors import InputError


def inclusion_matrix(n_documents: int, n_models: int, *, seed: int = 0) -> np.ndarray:
    """A (n_documents, n_models) boolean matrix: column m says which documents model m trains on (module doc).

    >>> m = inclusion_matrix(6, 4, seed=1)
    >>> m.shape, m.sum(axis=0).tolist(), m.sum(axis=1).tolist(), m[:, :2].sum(axis=1).tolist()
    ((6, 4), [3, 3, 3, 3], [2, 2, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1])
    """
    if n_models < 1 or n_documents < 1:
        raise InputError(f"need at least one document and one model; got {n_documents} and {n_models}")
    rng = np.random.default_rng(seed)
    matrix = np.zeros((n_documents, n_models), dtype=bool)
    for pair in range(0, n_models, 2):
        half = rng.permutation(n_documents)[: n_documents // 2]
        matrix[half, pair] = True
        if pair + 1 < n_models:
            matrix[:, pair + 1] = ~matrix[:, pair]
    return matrix


def target_half(n_documents: int, *, seed: int) -> np.ndarray:
    """The target model's own random half (exactly floor(n/2) documents IN), independent of the shadow matrix.

    >>> int(target_half(10, seed=3).sum())
    5
    """
    rng = np.random.default_rng([seed, 1])  # a stream of its own: never one of the shadow models' rows
    members = np.zeros(n_documents, dtype=bool)
    members[rng.permutation(n_documents)[: n_documents // 2]] = True
    return members


def check_inclusion(inclusion: np.ndarray, ids: Sequence[str], expected_ids: Sequence[str]) -> None:
    """Refuse an inclusion matrix that does not match the population, naming the mismatching documents."""
    if inclusion.ndim != 2 or inclusion.shape[0] != len(ids):
        raise InputError(f"the inclusion matrix has shape {inclusion.shape} but lists {len(ids)} document ids")
    if list(ids) != list(expected_ids):
        missing = sorted(set(expected_ids) - set(ids))
        extra = sorted(set(ids) - set(expected_ids))
        order = "" if missing or extra else " (same documents, another order)"
        raise InputError(
            "the inclusion matrix does not match the population"
            + order
            + (f"; missing from the matrix: {', '.join(missing[:10])}" if missing else "")
            + (f"; not in the population: {', '.join(extra[:10])}" if extra else "")
            + ("; ..." if len(missing) > 10 or len(extra) > 10 else "")
            + ". Score the population the matrix was drawn for, or train the shadow models again."
        )
