"""Named known-split benchmarks: everything that decides a benchmark's numbers, in a few named presets.

A preset fixes the corpus, split sizes, seed, training recipe and model size, in two sizes: ``ci`` (a minute or
two on 2 CPU cores, for tests) and ``full`` (the published tables in ``benchmarks/RESULTS.md``); the demo
(``llm-mia demo``) uses its own ``demo`` size. :mod:`llm_mia.workflows.benchmark` runs one, and
:mod:`llm_mia.workflows.benchmark_report` writes its report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_mia.errors import InputError, unknown_name
from llm_mia.known_split.splits import SplitConfig
from llm_mia.known_split.training_config import Gpt2Architecture, TrainingConfig
from llm_mia.stats.metrics import DEFAULT_FPRS

RECIPES = ("fine-tune", "from-scratch")
SIZES = ("ci", "full")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything that decides a benchmark's numbers.

    ``recipe``: ``fine-tune`` (``base_model`` fine-tuned on the members; the reference model is the base model)
    or ``from-scratch`` (a GPT-2 of ``architecture`` trained on the members; the reference model is a GPT-2
    trained the same way, seed + 1, on the ``reference`` split; both share a BPE trained on the ``tokenizer``
    split, which is disjoint from everything evaluated). ``calibration_fpr``: target FPR of the threshold fitted
    on the calibration split. ``primary_scorer``: the scorer declared in advance as the one whose threshold the
    summary reports (the best of several, picked after the fact, would flatter itself).
    """

    name: str
    size: str
    description: str
    split: SplitConfig
    recipe: str
    training: TrainingConfig
    architecture: Gpt2Architecture | None = None
    base_model: str = "smollm2-135m"
    scoring_batch_size: int = 8
    fprs: tuple[float, ...] = DEFAULT_FPRS
    calibration_fpr: float = 0.05
    n_bootstrap: int = 1000
    confidence: float = 0.95
    primary_scorer: str = "reference"  # declared before any number is seen: the one the demo calibrates

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:
            raise InputError(f"recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        if self.recipe == "from-scratch" and (
            self.architecture is None or self.split.reference < 1 or self.split.tokenizer < 1
        ):
            raise InputError(
                "the from-scratch recipe needs an architecture, a reference split and a tokenizer split (both > 0)"
            )

    def with_overrides(
        self,
        *,
        epochs: Sequence[int] | None = None,
        seed: int | None = None,
        members: int | None = None,
        learning_rate: float | None = None,
    ) -> BenchmarkConfig:
        """A copy with some settings changed: snapshot epochs, the seed of split and training, the number of
        members and non-members (both set to ``members``), the learning rate."""
        split, training = self.split, self.training
        if seed is not None:
            split, training = dataclasses.replace(split, seed=seed), dataclasses.replace(training, seed=seed)
        if members is not None:
            split = dataclasses.replace(split, members=members, nonmembers=members)
        if epochs is not None:
            training = dataclasses.replace(training, epochs=tuple(epochs))
        if learning_rate is not None:
            training = dataclasses.replace(training, learning_rate=learning_rate)
        return dataclasses.replace(self, split=split, training=training)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "description": self.description,
            "split": self.split.to_dict(),
            "recipe": self.recipe,
            "training": self.training.to_dict(),
            "architecture": None if self.architecture is None else self.architecture.to_dict(),
            "base_model": self.base_model if self.recipe == "fine-tune" else None,
            "scoring_batch_size": self.scoring_batch_size,
            "fprs": list(self.fprs),
            "calibration_fpr": self.calibration_fpr,
            "n_bootstrap": self.n_bootstrap,
            "confidence": self.confidence,
            "primary_scorer": self.primary_scorer,
        }


# ------------------------------------------------------------------------------------------------ presets

_WIKI_WORDS = {"min_words": 40, "max_words": 80}
_DOCS_WORDS = {"min_words": 40, "max_words": 160}
_SMALL_GPT2 = Gpt2Architecture(n_layer=2, n_embd=64, n_head=2, vocab_size=1024, n_positions=256)
_GPT2 = Gpt2Architecture(n_layer=4, n_embd=256, n_head=4, vocab_size=8192, n_positions=256)


def _smollm2(
    size: str,
    *,
    members: int,
    calibration: int,
    epochs: tuple[int, ...],
    warmup: int,
    learning_rate: float = 5e-5,
    trainable_blocks: int | None = None,
    micro_batch_size: int | None = None,
    scoring_batch_size: int = 8,
) -> BenchmarkConfig:
    trained = "all weights" if trainable_blocks is None else f"the top {trainable_blocks} of its 30 blocks"
    return BenchmarkConfig(
        name="smollm2-wikipedia",
        size=size,
        description=f"SmolLM2-135M fine-tuned ({trained}) on Wikipedia lead summaries; reference: SmolLM2 before",
        split=SplitConfig(
            corpus="wikipedia", members=members, nonmembers=members, calibration=calibration, **_WIKI_WORDS
        ),
        recipe="fine-tune",
        training=TrainingConfig(
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=8,
            max_length=128,
            warmup_steps=warmup,
            trainable_blocks=trainable_blocks,
            micro_batch_size=micro_batch_size,
        ),
        scoring_batch_size=scoring_batch_size,
    )


def _gpt2(name: str, corpus: str, size: str, words: dict[str, int]) -> BenchmarkConfig:
    full = size == "full"
    architecture = _GPT2 if full else _SMALL_GPT2
    label = "4 layers, 256 dims, 8k BPE" if full else "2 layers, 64 dims, 1k BPE"
    what = "Wikipedia lead summaries" if corpus == "wikipedia" else "Python 3.11 documentation passages"
    return BenchmarkConfig(
        name=name,
        size=size,
        description=f"GPT-2 trained from scratch on {what} ({label}); reference: the same recipe on disjoint text",
        split=SplitConfig(
            corpus=corpus,
            members=512 if full else 32,
            nonmembers=256 if full else 32,
            calibration=128 if full else 32,
            reference=512 if full else 32,
            tokenizer=2048 if full else 128,
            **words,
        ),
        recipe="from-scratch",
        training=TrainingConfig(
            epochs=(1, 2, 4, 8) if full else (1, 8),
            learning_rate=1e-3 if full else 3e-3,
            batch_size=8,
            max_length=256,
            warmup_steps=32 if full else 4,
        ),
        architecture=architecture,
    )


PRESETS: dict[str, dict[str, BenchmarkConfig]] = {
    "smollm2-wikipedia": {
        "ci": _smollm2("ci", members=8, calibration=0, epochs=(1,), warmup=0),
        # the demo fits in 2 GiB: the top third of the blocks trains (AdamW keeps state for 35 M weights, not 135 M)
        # at a learning rate chosen on another seed (1) so that the members' training loss after 2 epochs matches
        # the full fine-tune's (2.31 vs 2.38), two documents per forward pass in training and four in scoring hold
        # a quarter and a half of the output logits (benchmarks/demo_recipe.py, benchmarks/demo_cost.py)
        "demo": _smollm2(
            "demo",
            members=24,
            calibration=24,
            epochs=(2,),
            warmup=1,
            learning_rate=2e-4,
            trainable_blocks=10,
            micro_batch_size=2,
            scoring_batch_size=4,
        ),
        "full": _smollm2("full", members=64, calibration=32, epochs=(1, 2, 4), warmup=2),
    },
    "gpt2-wikipedia": {size: _gpt2("gpt2-wikipedia", "wikipedia", size, _WIKI_WORDS) for size in SIZES},
    "gpt2-python-docs": {size: _gpt2("gpt2-python-docs", "python-docs", size, _DOCS_WORDS) for size in SIZES},
}


def get_preset(name: str, size: str = "ci") -> BenchmarkConfig:
    """The preset ``name`` at ``size`` (``ci``, ``full``; ``demo`` for smollm2-wikipedia)."""
    if name not in PRESETS:
        raise unknown_name("benchmark", name, PRESETS)
    if size not in PRESETS[name]:
        raise unknown_name(f"size of benchmark {name!r}:", size, PRESETS[name])
    return PRESETS[name][size]
