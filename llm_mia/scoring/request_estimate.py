"""What a run against a model behind an API will send, counted before anything is sent (``--dry-run``).

Token counts are estimated as ceil(UTF-8 bytes / 4), the usual rule of thumb for English BPE tokenizers (the
endpoint's tokenizer is unknown until it is asked). Per text and per view the endpoint reads:

- echo mode: one completion request whose prompt is the text (n tokens) and which generates one token;
- forced mode: n - 1 completion requests with prompts x_<t of 1 .. n - 1 tokens, n(n - 1)/2 prompt tokens in
  all, plus a tokenize and a detokenize request per token on the server's free tokenizer endpoints.

Which mode an endpoint needs is found only by probing it, so both are given. The probe itself is a handful of
requests of a dozen tokens each. A price (per million prompt tokens) turns token counts into a cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llm_mia.io.documents import Document
from llm_mia.scoring.scorers import VIEWS, ScorerCall


@dataclass(frozen=True)
class RequestEstimate:
    """Requests and prompt tokens a run will send, per mode (module docstring)."""

    model: str
    texts: int
    views: tuple[str, ...]
    tokens: int  # estimated tokens over every text and view
    echo_requests: int
    echo_prompt_tokens: int
    forced_completion_requests: int
    forced_prompt_tokens: int
    forced_tokenizer_requests: int

    def describe(self, price_per_million: float | None = None) -> list[str]:
        def cost(tokens: int) -> str:
            if price_per_million is None:
                return ""
            return f", costing about {tokens * price_per_million / 1e6:.3g} at that price"

        return [
            f"{self.model}: {self.texts} texts x {len(self.views)} view(s) ({', '.join(self.views)}), "
            f"about {self.tokens:,} tokens (estimated as bytes / 4)",
            f"  if the endpoint returns prompt log-probs (echo): {self.echo_requests:,} requests, "
            f"{self.echo_prompt_tokens:,} prompt tokens{cost(self.echo_prompt_tokens)}",
            f"  if it needs forced tokens: {self.forced_completion_requests:,} completion requests, "
            f"{self.forced_prompt_tokens:,} prompt tokens{cost(self.forced_prompt_tokens)}, and "
            f"{self.forced_tokenizer_requests:,} tokenizer requests",
            "  plus the probe at connect time (a few requests of a dozen tokens); nothing has been sent",
        ]


def estimate_requests(
    documents: Sequence[Document], calls: Sequence[ScorerCall], *, roles: dict[str, str]
) -> list[RequestEstimate]:
    """One estimate per model behind an API; ``roles`` maps a role (``target``, ``reference``) to its ``api:`` name."""
    from llm_mia.scoring.variants import apply_variant

    estimates = []
    for role, name in roles.items():
        views = tuple(dict.fromkeys(v for c in calls for v in c.scorer.views if VIEWS[v].model == role))
        lengths = [
            math.ceil(len(apply_variant(VIEWS[view].variant, d.text).encode("utf-8")) / 4)
            for view in views
            for d in documents
            if d.text.strip()
        ]
        estimates.append(
            RequestEstimate(
                model=name,
                texts=len(documents),
                views=views,
                tokens=sum(lengths),
                echo_requests=len(lengths),
                echo_prompt_tokens=sum(lengths),
                forced_completion_requests=sum(max(n - 1, 0) for n in lengths),
                forced_prompt_tokens=sum(n * (n - 1) // 2 for n in lengths),
                forced_tokenizer_requests=sum(2 * n for n in lengths),
            )
        )
    return estimates
