"""The contract every registered scorer keeps, checked for each one the registry holds (a new scorer is checked
the moment it registers; one that reads a view with no toy statistics below fails here until it gets some):

* finite on valid token statistics;
* unavailable on a document with nothing scored (a failed or empty extraction): ``ScoreUnavailable``, which
  ``score_rows`` turns into a null score and a status naming the scorer, never a number and never an exception;
* direction: higher on a toy member than on a toy non-member (higher = more likely a member, always);
* the invariances it claims: a document's score depends on its own statistics only (not on the documents scored
  beside it, their number or order: batch independence at the scorer level), the same statistics give the same
  bits, and ``length_invariant`` is true to its word both ways (the same statistics twice over keep a
  length-invariant score and move a length-sensitive one).

Statistics are made by hand, in the units the engine writes them (token log-probs <= 0, mean and SD of log p,
ranks >= 1, byte counts), so the test needs no model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from llm_mia.backends.token_stats import TokenStats
from llm_mia.io.documents import Document
from llm_mia.scoring.pipeline import score_rows
from llm_mia.scoring.scorers import VIEWS, Scorer, ScorerCall, ScoreUnavailable, all_scorers
from llm_mia.scoring.token_frequencies import FrequencyTable, save_table

TOKENIZER = "contract-tokenizer"
VOCABULARY = 64
T = 20  # scored tokens per document (min_k's default k = 0.2 takes exactly 4 of them, 8 of twice as many)
NEIGHBOURS = 5


def stats(logprob: np.ndarray, *, mu: float = -1.5, sigma: float = 1.0, ids: np.ndarray | None = None) -> TokenStats:
    """Token statistics as the engine writes them for ``logprob`` (one value per scored token, <= 0)."""
    logprob = np.minimum(np.asarray(logprob, dtype=np.float32), 0.0)
    size = logprob.shape[0]
    n_bytes = 4 * size
    return TokenStats(
        token_ids=np.arange(size, dtype=np.int64) % VOCABULARY if ids is None else ids,
        logprob=logprob,
        mu=np.full(size, mu, dtype=np.float32),
        sigma=np.full(size, sigma, dtype=np.float32),
        rank=np.where(logprob > -1.0, 1, 50).astype(np.int64),
        top1_logprob=np.maximum(logprob, np.float32(-0.2)),
        n_bytes=n_bytes,
        n_bytes_scored=n_bytes,
        zlib_bytes=n_bytes // 2 + 11,
        n_tokens=size,
        bos_added=True,
        n_windows=1,
        tokenizer_id=TOKENIZER,
    )


def noise(rng: np.random.Generator) -> np.ndarray:
    return rng.random(T)


# For each view: (member, non-member, random valid) statistics of one document, from its target statistics and a
# generator. A member is likely under the target (log p near 0, at the mode of the distribution), harder under a
# reference model, costlier lowercased, much less likely after non-member context, a dip below its neighbours and
# at a small gradient; a non-member is none of these.
def target(kind: str, rng: np.random.Generator) -> TokenStats:
    if kind == "member":
        return stats(-0.3 - 0.4 * noise(rng))
    if kind == "non-member":
        return stats(-8.0 - 2.0 * noise(rng))
    return stats(-rng.gamma(2.0, 1.5, T), mu=-float(rng.gamma(2.0, 1.0)), sigma=float(rng.gamma(2.0, 0.5)))


def scaled(base: TokenStats, member: float, nonmember: float, kind: str, rng: np.random.Generator) -> TokenStats:
    factor = {"member": member, "non-member": nonmember}.get(kind, 1.0 + rng.random())
    return dataclasses.replace(base, logprob=(base.logprob * np.float32(factor)).astype(np.float32))


def shifted(base: TokenStats, member: float, nonmember: float, kind: str, rng: np.random.Generator) -> TokenStats:
    shift = {"member": member, "non-member": nonmember}.get(kind, -3.0 * rng.random())
    return dataclasses.replace(base, logprob=np.minimum(base.logprob + np.float32(shift), 0.0).astype(np.float32))


VIEW_STATS: dict[str, Callable[[str, TokenStats, np.random.Generator], Any]] = {
    "target": lambda kind, base, rng: base,
    "target_lower": lambda kind, base, rng: shifted(base, -2.0, -0.1, kind, rng),
    "reference": lambda kind, base, rng: shifted(base, -3.0, 0.0, kind, rng),
    "target_recall": lambda kind, base, rng: scaled(base, 3.0, 1.05, kind, rng),
    "target_gradient": lambda kind, base, rng: dataclasses.replace(
        base,
        gradient_norms={"member": (1.0, 0.5, 0.1), "non-member": (50.0, 10.0, 2.0)}.get(
            kind, tuple(sorted(rng.gamma(2.0, 5.0, 3), reverse=True))
        ),
    ),
    "target_neighbours": lambda kind, base, rng: tuple(shifted(base, -3.0, -0.1, kind, rng) for _ in range(NEIGHBOURS)),
}


def views(scorer: Scorer, kind: str, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    base = target(kind, rng)
    missing = [view for view in scorer.views if view not in VIEW_STATS]
    assert not missing, f"scorer {scorer.name} reads view(s) {missing}: give them toy statistics in VIEW_STATS"
    return {view: VIEW_STATS[view](kind, base, rng) for view in scorer.views}


@pytest.fixture(scope="module")
def frequency_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A token-frequency table for DC-PDD over the toy vocabulary (every id seen, some often, some rarely)."""
    counts = np.random.default_rng(7).integers(1, 200, VOCABULARY).astype(np.int64)
    path = tmp_path_factory.mktemp("frequencies") / "table.npz"
    save_table(FrequencyTable(TOKENIZER, counts, "toy corpus", "0" * 64, 10), path)
    return path


@dataclasses.dataclass(frozen=True)
class PreparedCall:
    """A scorer call with what its ``prepare`` built for the run, called as the pipeline calls it."""

    call: ScorerCall
    prepared: Any

    @property
    def column(self) -> str:
        return self.call.column

    def __call__(self, views: Any) -> float:
        return self.call(views, self.prepared)

    def rows(self, documents: list[Document], stats: dict[str, list[TokenStats]]) -> list[dict[str, Any]]:
        """The pipeline's rows (``score_rows``) for ``documents`` with ``stats`` per view."""
        return score_rows(documents, [self.call], stats, {self.column: self.prepared})


def call_for(scorer: Scorer, frequency_table: Path) -> PreparedCall:
    """A call of ``scorer`` with its defaults and what its ``prepare`` reads beside the statistics built (the
    frequency table, for a stand-in model with the toy tokenizer)."""
    resources = {"corpus": str(frequency_table)}  # DC-PDD: a table file written for this tokenizer
    params = {key: resources.get(key, default) for key, default in scorer.defaults.items()}
    call = ScorerCall(scorer, params)
    return PreparedCall(call, call.prepare(SimpleNamespace(tokenizer=object(), tokenizer_id=TOKENIZER)))


SCORERS = list(all_scorers().values())
IDS = [scorer.name for scorer in SCORERS]


@pytest.mark.parametrize("scorer", SCORERS, ids=IDS)
def test_finite_on_valid_token_statistics(scorer: Scorer, frequency_table: Path) -> None:
    call = call_for(scorer, frequency_table)
    for seed in range(12):
        for kind in ("member", "non-member", "random"):
            score = call(views(scorer, kind, seed))
            assert isinstance(score, float) and math.isfinite(score), (scorer.name, kind, seed, score)


@pytest.mark.parametrize("scorer", SCORERS, ids=IDS)
def test_unavailable_when_nothing_was_scored(scorer: Scorer, frequency_table: Path) -> None:
    call = call_for(scorer, frequency_table)
    empty = TokenStats.empty(status="ok", n_bytes=0, zlib_bytes=8, n_tokens=0, bos_added=False, tokenizer_id=TOKENIZER)
    failed = TokenStats.empty(
        status="non-finite logits (NaN/inf): try float32", n_bytes=40, zlib_bytes=30, n_tokens=10, bos_added=True,
        tokenizer_id=TOKENIZER,
    )  # fmt: skip
    valid = views(scorer, "member", 0)
    for nothing in (empty, failed):
        every_view = {view: (nothing,) * NEIGHBOURS if VIEWS[view].neighbours else nothing for view in scorer.views}
        own_text = {**valid, scorer.views[0]: nothing}  # the document itself unscored, the other views fine
        for broken in (every_view, own_text):
            with pytest.raises(ScoreUnavailable):
                call(broken)
        documents = [Document(id="unscored", text="x"), Document(id="scored", text="y")]
        rows = call.rows(
            documents, {view: [every_view[view], valid[view]] for view in scorer.views}
        )  # the pipeline's row: a null score with the reason, and the next document scored as usual
        assert rows[0][call.column] is None
        assert rows[0]["status"] != "ok" and (nothing.status != "ok" or call.column in rows[0]["status"])
        assert math.isfinite(rows[1][call.column]) and rows[1]["status"] == "ok"


@pytest.mark.parametrize("scorer", SCORERS, ids=IDS)
def test_a_member_scores_higher_than_a_non_member(scorer: Scorer, frequency_table: Path) -> None:
    call = call_for(scorer, frequency_table)
    for seed in range(5):
        member, nonmember = call(views(scorer, "member", seed)), call(views(scorer, "non-member", seed))
        assert member > nonmember, (scorer.name, seed, member, nonmember)


@pytest.mark.parametrize("scorer", SCORERS, ids=IDS)
def test_a_score_depends_on_its_own_document_only(scorer: Scorer, frequency_table: Path) -> None:
    """The same statistics give the same bits alone, in a batch of any size and in any position of it."""
    call = call_for(scorer, frequency_table)
    per_document = [views(scorer, kind, seed) for seed in range(4) for kind in ("member", "non-member", "random")]
    documents = [Document(id=str(i), text=f"text {i}") for i in range(len(per_document))]

    def scores(order: list[int]) -> dict[str, Any]:
        stats_by_view = {view: [per_document[i][view] for i in order] for view in scorer.views}
        rows = call.rows([documents[i] for i in order], stats_by_view)
        return {row["id"]: row[call.column] for row in rows}

    alone = {}
    for i in range(len(documents)):
        alone.update(scores([i]))
    everything = list(range(len(documents)))
    assert scores(everything) == alone
    assert scores(everything[::-1]) == alone
    assert scores(everything[::2]) == {key: alone[key] for key in map(str, everything[::2])}
    assert scores(everything) == scores(everything)  # deterministic


def twice(value: Any) -> Any:
    """The same statistics twice over: a text repeated (every per-token array and byte count doubled)."""
    if isinstance(value, tuple):
        return tuple(twice(v) for v in value)
    return dataclasses.replace(
        value,
        **{name: np.concatenate([getattr(value, name)] * 2) for name in ("token_ids", "logprob", "mu", "sigma")},
        rank=np.concatenate([value.rank] * 2),
        top1_logprob=np.concatenate([value.top1_logprob] * 2),
        n_bytes=2 * value.n_bytes,
        n_bytes_scored=2 * value.n_bytes_scored,
        zlib_bytes=2 * value.zlib_bytes,
        n_tokens=2 * value.n_tokens,
    )


@pytest.mark.parametrize("scorer", SCORERS, ids=IDS)
def test_length_invariance_is_as_registered(scorer: Scorer, frequency_table: Path) -> None:
    """``length_invariant=True``: a text's statistics twice over score the same; ``False``: they do not (so
    dataset-level tests are right to leave the scorer out)."""
    call = call_for(scorer, frequency_table)
    for seed in range(3):
        for kind in ("member", "non-member", "random"):
            once = views(scorer, kind, seed)
            score, doubled = call(once), call({view: twice(value) for view, value in once.items()})
            if scorer.length_invariant:
                assert doubled == pytest.approx(score, rel=1e-9, abs=1e-12), (scorer.name, kind, seed)
            else:
                assert doubled != pytest.approx(score, rel=1e-3), (scorer.name, kind, seed)
