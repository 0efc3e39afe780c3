"""What decides a known-split model's weights besides its data: how it is trained (:class:`TrainingConfig`) and,
for a model trained from scratch, its GPT-2 architecture (:class:`Gpt2Architecture`). Both are part of the
training run's identity (``llm_mia.known_split.model_cache``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from llm_mia.errors import InputError


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is trained on a list of texts.

    ``epochs``: the epochs after which a snapshot is saved (the run lasts ``max(epochs)`` epochs; 0 saves the
    model before any update). ``learning_rate``: peak AdamW learning rate, reached linearly over
    ``warmup_steps`` optimizer steps and then held constant. ``batch_size``: documents per step.
    ``max_length``: tokens per training sequence; a longer document is cut into consecutive pieces so that
    every token is trained on. ``weight_decay``: AdamW decoupled weight decay. ``seed``: weights and order.
    ``defense``: a training-time defense (``llm_mia.defenses.training``: DP-SGD, weight decay, dropout, early
    stopping), part of the run's identity only when set.

    Two memory settings, each part of the run's identity only when set (None: the whole model, whole batches):
    ``trainable_blocks``: train only the top k transformer blocks and the final norm; the embeddings (tied to the
    output head in SmolLM2 and GPT-2) and the lower blocks stay as they were, so the optimizer keeps state for those
    weights alone and no activation below block k is kept for the backward pass (partial fine-tuning, as in
    Howard and Ruder 2018 and Lee et al. 2019, "What would Elsa do? Freezing layers during transformer
    fine-tuning"). ``micro_batch_size``: documents per forward pass; the gradients of a batch's micro-batches
    add up to the batch's (each micro-batch's summed token loss divided by the whole batch's tokens), so a step
    is the same step, computed with the output logits of fewer documents in memory at once (the weights can
    differ from unsplit batches in the last float bits: the sums run in another order).
    """

    epochs: tuple[int, ...] = (1,)
    learning_rate: float = 5e-5
    batch_size: int = 8
    max_length: int = 128
    warmup_steps: int = 0
    weight_decay: float = 0.0
    seed: int = 0
    defense: Any = None  # an llm_mia.defenses.training.TrainingDefense, or None
    trainable_blocks: int | None = None
    micro_batch_size: int | None = None

    def __post_init__(self) -> None:
        epochs = tuple(sorted({int(e) for e in self.epochs}))
        if not epochs or epochs[0] < 0:
            raise InputError(f"epochs must be a non-empty list of numbers >= 0, got {self.epochs}")
        object.__setattr__(self, "epochs", epochs)
        if self.learning_rate <= 0:
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.batch_size < 1 or self.max_length < 2 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise InputError(f"need batch_size >= 1, max_length >= 2, warmup_steps >= 0, weight_decay >= 0; got {self}")
        if self.trainable_blocks is not None and self.trainable_blocks < 1:
            raise InputError(f"trainable_blocks must be >= 1 (None trains every weight), got {self.trainable_blocks}")
        if self.micro_batch_size is not None and not 1 <= self.micro_batch_size <= self.batch_size:
            raise InputError(
                f"micro_batch_size must be between 1 and batch_size ({self.batch_size}), got {self.micro_batch_size}"
            )
        if self.micro_batch_size is not None and self.defense is not None and self.defense.kind == "dp":
            raise InputError(
                "DP-SGD clips each sequence's own gradient over whole batches: leave micro_batch_size unset"
            )

    @property
    def total_epochs(self) -> int:
        return max(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        """Every setting; ``defense``, ``trainable_blocks`` and ``micro_batch_size`` only when set, so the runs that
        leave them unset keep the identity (and cache key) they had before these settings existed."""
        optional = ("defense", "trainable_blocks", "micro_batch_size")
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in optional}
        defended = {"defense": self.defense.to_dict()} if self.defense is not None else {}
        memory = {name: getattr(self, name) for name in optional[1:] if getattr(self, name) is not None}
        return {**settings, "epochs": list(self.epochs)} | defended | memory


@dataclass(frozen=True)
class Gpt2Architecture:
    """A small GPT-2 (``transformers.GPT2LMHeadModel``) and its BPE vocabulary size.

    Defaults: 4 layers, 256 dimensions, 4 heads, 8,192-token vocabulary, 128 positions, no dropout (as in
    recent pretraining runs such as Pythia). About 3 steps/s for 8 x 128 tokens on 2 CPU cores.
    """

    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    vocab_size: int = 8192
    n_positions: int = 128
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
