"""Training-time defenses for the known-split recipes: DP-SGD (Opacus), weight decay, dropout, early stopping.

Spec grammar (``llm-mia benchmark NAME --defense SPEC``), one defense per training run:

- ``dp:epsilon=E[;delta=D][;clip=C]``: DP-SGD at a target (E, D) over the planned steps (the noise multiplier is
  solved for by Opacus' RDP accountant); ``dp:noise=S[;clip=C][;max_epsilon=E]``: a given noise multiplier, refused
  before training when the planned steps would spend more than ``max_epsilon``. ``clip``: per-example gradient
  norm bound (default 1.0); ``delta`` defaults to 1 / (number of training sequences); ``lr`` replaces the recipe's
  learning rate (the averaged noisy gradient is small next to a plain one: at a plain fine-tuning rate a DP run
  may not move the model at all).
- ``weight_decay:lambda=L``: AdamW decoupled weight decay L.
- ``dropout:p=P``: dropout P on attention probabilities and on each attention and MLP block's output before it
  joins the residual stream (GPT-2's resid/attn/embd dropout; on Llama-family models, which ship only attention
  dropout, the block outputs get it through forward hooks).
- ``early_stopping:patience=N``: after every epoch the mean loss on held-out text of the members' distribution
  (the benchmark's calibration controls) is measured; the snapshot at epoch e is the best model of epochs 0..e,
  and training stops once N epochs in a row brought no improvement.

DP-SGD as in Abadi et al. 2016 ("Deep Learning with Differential Privacy", CCS): each step draws a Poisson sample
of the training sequences (each with probability q = batch size / n, so the accountant's assumption holds: not
shuffled fixed batches), clips every example's gradient to norm C, adds Gaussian noise of standard deviation S*C
to the sum and divides by the expected batch size; AdamW then steps on that (DP-Adam). The loss is each
sequence's mean token cross-entropy, averaged over the batch (per-example gradients need a per-example loss; the
plain recipe weights tokens, not sequences). Deviation, stated: the (tied) token-embedding matrix is frozen in
DP runs: its per-example gradient is V x H per example (113M floats on SmolLM2), which no CPU run can afford,
and DP fine-tuning commonly leaves embeddings frozen; smaller embedding matrices (the GPT-2 recipe's 2M) are
trained (:func:`frozen_embeddings`). Privacy is per training *sequence* (a document longer than
``max_length`` is several sequences, so a document's epsilon is up to that many times larger; the known-split
recipes cut at 128 tokens and most documents fit). The accountant's epsilon is Opacus' RDP bound.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from llm_mia.defenses.specs import DefenseSpec, parse_kind_spec
from llm_mia.errors import LlmMiaError

KINDS: dict[str, dict[str, type]] = {
    "dp": {"epsilon": float, "noise": float, "clip": float, "delta": float, "max_epsilon": float, "lr": float},
    "weight_decay": {"lambda": float},
    "dropout": {"p": float},
    "early_stopping": {"patience": int},
}


@dataclass(frozen=True)
class TrainingDefense(DefenseSpec):
    """One training-time defense (see the module docstring); build with :func:`parse_training_defense`."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dict(self.params)}


def parse_training_defense(spec: str) -> TrainingDefense:
    """``kind:key=value;...`` -> TrainingDefense, with every value checked.

    >>> parse_training_defense("dp:epsilon=8").spec
    'dp:clip=1.0;epsilon=8.0'
    >>> parse_training_defense("early_stopping").spec
    'early_stopping:patience=1'
    """
    kind, params = parse_kind_spec(
        spec,
        what="training defense",
        kinds=KINDS,
        defaults={"dp": {"clip": 1.0}, "early_stopping": {"patience": 1}},
        required=(),
    )
    _check(spec, kind, params)
    return TrainingDefense(kind, tuple(sorted(params.items())))


def _check(spec: str, kind: str, params: dict[str, Any]) -> None:
    def need(condition: bool, wanted: str) -> None:
        if not condition:
            raise LlmMiaError(f"training defense {spec!r}: need {wanted}")

    if kind == "dp":
        need(("epsilon" in params) != ("noise" in params), "exactly one of epsilon=E (a target) or noise=S")
        need(params.get("epsilon", 1.0) > 0, "epsilon > 0")
        need(params.get("noise", 1.0) >= 0, "a noise multiplier >= 0")
        need(params["clip"] > 0, "clip > 0 (a per-example gradient norm bound)")
        need(0 < params.get("delta", 0.5) < 1, "0 < delta < 1")
        need(params.get("max_epsilon", 1.0) > 0, "max_epsilon > 0")
        need(params.get("lr", 1.0) > 0, "lr > 0")
    elif kind == "weight_decay":
        need(params.get("lambda", -1.0) >= 0, "lambda=L with L >= 0")
    elif kind == "dropout":
        need(0 <= params.get("p", -1.0) < 1, "p=P with 0 <= P < 1")
    else:
        need(params["patience"] >= 1, "patience >= 1")


# ------------------------------------------------------------------------------------------------- dropout


def apply_dropout(model: Any, p: float) -> list[Any]:
    """Set dropout ``p`` everywhere the architecture has it, and hook it onto block outputs where it has none;
    returns the hook handles (remove them after training)."""
    import torch

    handles = []
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if hasattr(module, "attention_dropout") and isinstance(module.attention_dropout, float):
            module.attention_dropout = p
    if not any(isinstance(m, torch.nn.Dropout) for m in model.modules()):  # Llama family: attention dropout only

        def drop(module: Any, inputs: Any, output: Any) -> Any:
            return torch.nn.functional.dropout(output, p, training=module.training)

        for name, module in model.named_modules():
            if name.endswith((".mlp", ".o_proj")):
                handles.append(module.register_forward_hook(drop))
        if not handles:
            raise LlmMiaError(f"dropout: {type(model).__name__} has no dropout layers and no mlp/o_proj blocks to hook")
    return handles


# ---------------------------------------------------------------------------------------------------- DP-SGD


@dataclass(frozen=True)
class PrivacyPlan:
    """What a DP-SGD run will do: sampling rate, steps, noise multiplier, clipping bound, delta."""

    sample_rate: float
    steps: int
    noise_multiplier: float
    clip: float
    delta: float

    def epsilon(self, steps: int | None = None) -> float:
        """The RDP accountant's epsilon after ``steps`` (default all) Poisson-sampled Gaussian steps."""
        from opacus.accountants import RDPAccountant

        if self.noise_multiplier == 0:
            return math.inf
        accountant = RDPAccountant()
        accountant.history = [(self.noise_multiplier, self.sample_rate, self.steps if steps is None else steps)]
        return float(accountant.get_epsilon(self.delta))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accountant": "opacus RDP", "epsilon": self.epsilon()}


def plan_privacy(defense: TrainingDefense, *, n_sequences: int, batch_size: int, epochs: int) -> PrivacyPlan:
    """The DP-SGD plan for ``epochs`` epochs of Poisson batches (expected size ``batch_size``) over ``n_sequences``;
    refused before any training when it cannot meet the requested epsilon."""
    from opacus.accountants.utils import get_noise_multiplier

    rate = min(1.0, batch_size / n_sequences)
    steps = epochs * math.ceil(n_sequences / batch_size)
    delta = defense.get("delta", 1.0 / n_sequences)
    clip = defense.get("clip")
    if defense.get("epsilon") is not None:
        target = defense.get("epsilon")
        try:
            noise = get_noise_multiplier(target_epsilon=target, target_delta=delta, sample_rate=rate, steps=steps)
        except ValueError as error:
            raise LlmMiaError(
                f"DP-SGD: no noise multiplier reaches epsilon {target} at delta {delta:.3g} over {steps} steps of "
                f"sampling rate {rate:.3g} ({error}); ask for a larger epsilon or fewer epochs"
            ) from None
        return PrivacyPlan(rate, steps, float(noise), clip, delta)
    plan = PrivacyPlan(rate, steps, defense.get("noise"), clip, delta)
    limit = defense.get("max_epsilon")
    if limit is not None and plan.epsilon() > limit:
        raise LlmMiaError(
            f"DP-SGD: noise multiplier {plan.noise_multiplier} over {steps} steps would spend epsilon "
            f"{plan.epsilon():.3g} at delta {delta:.3g}, above max_epsilon {limit}; raise the noise or train fewer "
            "epochs"
        )
    return plan


def poisson_batches(n: int, rate: float, steps: int, *, seed: int, first_step: int = 0) -> list[list[int]]:
    """Steps ``first_step ..`` of a seeded Poisson sampling: each index joins a step's batch with probability
    ``rate``, independently (a batch may be empty)."""
    import numpy as np

    return [
        np.flatnonzero(np.random.default_rng([seed, step]).random(n) < rate).tolist()
        for step in range(first_step, first_step + steps)
    ]


def sequence_mean_loss(model: Any, input_ids: Any, attention: Any) -> Any:
    """Mean over the batch of each sequence's mean next-token cross-entropy (float32; padding excluded)."""
    import torch

    # position ids given per row: GPT-2 would otherwise embed one (1, T) row of positions for the whole batch,
    # and per-example gradients of its position embedding need one row per example
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids).contiguous()
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits[:, :-1].float()
    targets = input_ids[:, 1:]
    mask = attention[:, 1:].to(logits.dtype)
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    per_sequence = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
    return per_sequence.mean()


FROZEN_EMBEDDING_ENTRIES = 16_000_000


def frozen_embeddings(model: Any) -> bool:
    """Whether DP-SGD leaves the token embeddings (and a tied output head) frozen: when the matrix has more than
    ``FROZEN_EMBEDDING_ENTRIES`` entries (SmolLM2's 49,152 x 576 = 28M: frozen; the GPT-2 recipe's 8,192 x 256:
    trained)."""
    return model.get_input_embeddings().weight.numel() > FROZEN_EMBEDDING_ENTRIES


def make_private(model: Any, optimizer_factory: Any, plan: PrivacyPlan, *, batch_size: int, seed: int) -> Any:
    """(model with per-example gradient hooks, DP optimizer): large embeddings frozen (:func:`frozen_embeddings`),
    every other weight trained; the noise generator seeded so a run reproduces."""
    import torch
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    if frozen_embeddings(model):
        model.get_input_embeddings().weight.requires_grad_(False)
        output = model.get_output_embeddings()
        if output is not None:
            output.weight.requires_grad_(False)
    wrapped = GradSampleModule(model, loss_reduction="mean")
    optimizer = DPOptimizer(
        optimizer_factory([p for p in model.parameters() if p.requires_grad]),
        noise_multiplier=plan.noise_multiplier,
        max_grad_norm=plan.clip,
        expected_batch_size=batch_size,
        loss_reduction="mean",
        generator=torch.Generator().manual_seed(seed),
    )
    return wrapped, optimizer
