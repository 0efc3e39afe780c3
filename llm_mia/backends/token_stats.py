"""TokenStats: everything token-level scorers need from one forward pass over one document.

For a document with content tokens x_1..x_T and the model's next-token distribution p_t(.) at each scored
position t (DESIGN.md section 3):

    logprob[t]      = l_t = log p_t(x_t)                       (float32 log-softmax of the logits)
    mu[t]           = sum_v p_t(v) log p_t(v)                  (mean of log p under p_t)
    sigma[t]        = sqrt(sum_v p_t(v) (log p_t(v) - mu_t)^2) (std of log p under p_t)
    entropy[t]      = -mu[t]
    rank[t]         = 1 + #{v : logit_t(v) > logit_t(x_t)}     (1 = the model's top choice)
    top1_logprob[t] = max_v log p_t(v)

Only scored tokens appear in the arrays. A tokenizer that adds BOS lets every content token be scored (the
first one given BOS); one that does not leaves the first content token unscored, since nothing predicts it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

STATUS_OK = "ok"


def zlib_length(text: str) -> int:
    """Length in bytes of zlib.compress(utf8(text)) at the default level: the text's zlib entropy."""
    return len(zlib.compress(text.encode("utf-8")))


class TextFacts(TypedDict):
    """The fields of a TokenStats that describe the text and the tokenizer, whatever was scored: an extractor
    builds them once per document and passes them as ``**facts`` to ``TokenStats`` or ``TokenStats.empty``."""

    n_bytes: int
    zlib_bytes: int
    bos_added: bool
    tokenizer_id: str


@dataclass(frozen=True)
class TokenStats:
    """Per-document output of one extraction (one model, one text variant).

    ``status`` is ``"ok"`` or a short reason the arrays are empty or untrustworthy (``"empty text"``,
    ``"no scorable tokens"``, ``"non-finite logits"``). ``tokenizer_id`` fingerprints the tokenizer, so
    scorers comparing two models know whether token-level comparison is meaningful.
    """

    token_ids: np.ndarray  # (T_scored,) int64
    logprob: np.ndarray  # (T_scored,) float32
    mu: np.ndarray  # (T_scored,) float32
    sigma: np.ndarray  # (T_scored,) float32
    rank: np.ndarray  # (T_scored,) int64
    top1_logprob: np.ndarray  # (T_scored,) float32
    n_bytes: int  # UTF-8 length of the whole text
    n_bytes_scored: int  # UTF-8 bytes covered by the scored tokens (n_bytes minus an unscored first token)
    zlib_bytes: int  # length of zlib.compress(utf8 text): the text's zlib entropy, for the zlib scorer
    n_tokens: int  # content tokens in the text (special tokens excluded)
    bos_added: bool  # whether the tokenizer prepended BOS (so the first content token is scored)
    n_windows: int  # model calls the document needed (1 unless longer than the window)
    tokenizer_id: str
    status: str = STATUS_OK
    gradient_norms: tuple[float, float, float] | None = None  # ||grad of mean loss||_1, _2, _inf (GradNorm view)

    @property
    def entropy(self) -> np.ndarray:
        """Entropy of each scored position's predictive distribution, in nats: -mu."""
        return -self.mu

    @property
    def n_scored(self) -> int:
        return int(self.logprob.shape[0])

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def nll(self) -> float:
        """Mean negative log-likelihood per scored token, reduced in float64: -(1/T) sum_t l_t."""
        return float(-np.mean(self.logprob, dtype=np.float64))

    @property
    def total_nll(self) -> float:
        """Summed negative log-likelihood over the scored tokens, in nats (float64 reduction)."""
        return float(-np.sum(self.logprob, dtype=np.float64))

    @classmethod
    def empty(
        cls,
        *,
        status: str,
        n_bytes: int,
        zlib_bytes: int,
        n_tokens: int,
        bos_added: bool,
        tokenizer_id: str,
        n_windows: int = 0,
    ) -> TokenStats:
        """A record for a document with nothing scored, carrying the reason."""
        floats = np.zeros(0, dtype=np.float32)
        ints = np.zeros(0, dtype=np.int64)
        return cls(
            token_ids=ints,
            logprob=floats,
            mu=floats,
            sigma=floats,
            rank=ints,
            top1_logprob=floats,
            n_bytes=n_bytes,
            n_bytes_scored=0,
            zlib_bytes=zlib_bytes,
            n_tokens=n_tokens,
            bos_added=bos_added,
            n_windows=n_windows,
            tokenizer_id=tokenizer_id,
            status=status,
        )
