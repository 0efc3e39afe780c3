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
    """

    epochs: tuple[int, ...] = (1,)
    learning_rate: float = 5e-5
    batch_size: int = 8
    max_length: int = 128
    warmup_steps: int = 0
    weight_decay: float = 0.0
    seed: int = 0
    defense: Any = None  # an llm_mia.defenses.training.TrainingDefense, or None

    def __post_init__(self) -> None:
        epochs = tuple(sorted({int(e) for e in self.epochs}))
        if not epochs or epochs[0] < 0:
            raise InputError(f"epochs must be a non-empty list of numbers >= 0, got {self.epochs}")
        object.__setattr__(self, "epochs", epochs)
        if self.learning_rate <= 0:
            raise InputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.batch_size < 1 or self.max_length < 2 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise InputError(f"need batch_size >= 1, max_length >= 2, warmup_steps >= 0, weight_decay >= 0; got {self}")

    @property
    def total_epochs(self) -> int:
        return max(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        """Every setting; ``defense`` only when set, so undefended runs keep the identity (and cache key) they had
        before defenses existed."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "defense"}
        defended = {"defense": self.defense.to_dict()} if self.defense is not None else {}
        return {**settings, "epochs": list(self.epochs)} | defended


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
