"""Inference-time defenses: what a defended deployment returns instead of the model's exact log-probabilities.

A defense wraps a loaded model (:func:`defended`) and is applied by the extraction engine to every scored
position's logits before any reduction (``llm_mia.engine.output_defense``), so every scorer (loss, Min-K%,
Min-K%++, zlib, reference, ...) sees only what the deployment would return. Kinds (spec
``kind:key=value;key=value`` as ``--output-defense`` takes it):

- ``temperature:t=T``: the deployment samples from softmax(logits / T) and returns those log-probabilities.
  T = 1 is the undefended model, bit for bit.
- ``noise:scale=S;distribution=gaussian|laplace``: every returned log-probability gets independent noise of
  standard deviation S (Gaussian) or scale S (Laplace, density exp(-|x|/S) / 2S), and the attacker reads the
  renormalised distribution softmax(log p + noise) (the noise is added to the logits, which gives exactly that
  distribution; S = 0 is the undefended model, bit for bit).
- ``round:decimals=D``: returned log-probabilities rounded to D decimals (what an API that prints a few digits
  returns); the token's own value is the rounded one, and the distribution statistics below weight the rounded
  values by softmax of them.
- ``top_k:k=K``: only the K largest log-probabilities of each position are returned, as hosted APIs do. A token
  outside them has no returned value: its log-probability is taken as the K-th largest (an upper bound, the most
  an attacker can say) and its rank as K + 1 (a lower bound). Min-K%++'s mean and standard deviation of log p
  under p are computed over the K returned values with their probabilities renormalised (a stated
  approximation; exact for K = the vocabulary size).

Noise is a deterministic function of (seed, the window's token ids, the position): the same query always gets
the same answer, as from a deployment that caches, so asking again cannot average the noise away, and a
document's numbers never depend on its batch or neighbours. The defense is part of the model's description in run
records and of the stats-cache key. Sources: temperature scaling and output perturbation as membership-inference
defenses are surveyed in Hu et al. 2022, "Membership Inference Attacks on Machine Learning: A Survey" (ACM CSUR);
top-k-only output as the common API restriction is studied by Morris et al. 2024, "Language Model Inversion".
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_mia.defenses.specs import DefenseSpec, parse_kind_spec
from llm_mia.errors import LlmMiaError

KINDS: dict[str, dict[str, type]] = {
    "temperature": {"t": float},
    "noise": {"scale": float, "distribution": str, "seed": int},
    "round": {"decimals": int},
    "top_k": {"k": int},
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "temperature": {},
    "noise": {"distribution": "gaussian", "seed": 0},
    "round": {},
    "top_k": {},
}


@dataclass(frozen=True)
class OutputDefense(DefenseSpec):
    """One inference-time defense with its settings (see the module docstring); build with :func:`parse_defense`."""

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.params), "spec": self.spec}

    @property
    def random(self) -> bool:
        return self.kind == "noise"


def row_seeds(seed: int, segments: Sequence[Any], rows: Sequence[int], positions: Sequence[int]) -> list[int]:
    """One 63-bit seed per scored row from (seed, the row's segment's token ids, the predicting position)."""
    digests = [hashlib.sha256(f"{seed}|{','.join(map(str, s.input_ids))}".encode()).digest() for s in segments]
    return [
        int.from_bytes(hashlib.sha256(digests[row] + int(position).to_bytes(8, "little")).digest()[:8], "little") >> 1
        for row, position in zip(rows, positions, strict=True)
    ]


def parse_defense(spec: str) -> OutputDefense:
    """``kind:key=value;key=value`` -> OutputDefense, every value checked (see the module docstring).

    >>> parse_defense("temperature:t=2").spec
    'temperature:t=2.0'
    >>> parse_defense("noise:scale=0.5").spec
    'noise:distribution=gaussian;scale=0.5;seed=0'
    """
    kind, params = parse_kind_spec(
        spec,
        what="output defense",
        kinds=KINDS,
        defaults=DEFAULTS,
        example=" (e.g. temperature:t=2, noise:scale=0.5, round:decimals=1, top_k:k=5)",
    )
    _check(spec, kind, params)
    return OutputDefense(kind, tuple(sorted(params.items())))


def _check(spec: str, kind: str, params: dict[str, Any]) -> None:
    problems = {
        "temperature": ("t", lambda v: v > 0 and v != float("inf"), "a temperature > 0"),
        "noise": ("scale", lambda v: 0 <= v < float("inf"), "a noise scale >= 0"),
        "round": ("decimals", lambda v: v >= 0, "decimals >= 0"),
        "top_k": ("k", lambda v: v >= 1, "k >= 1"),
    }
    key, valid, wanted = problems[kind]
    if not valid(params[key]):
        raise LlmMiaError(f"output defense {spec!r}: {key}={params[key]} is out of range; need {wanted}")
    if kind == "noise" and params["distribution"] not in ("gaussian", "laplace"):
        raise LlmMiaError(f"output defense {spec!r}: distribution must be gaussian or laplace")


def defended(loaded: Any, defense: OutputDefense | str | None) -> Any:
    """``loaded`` (a LoadedModel) whose extractions return what ``defense`` lets through; the weights are shared."""
    if defense is None:
        return loaded
    if isinstance(defense, str):
        defense = parse_defense(defense)
    return dataclasses.replace(loaded, output_defense=defense)
