"""Seeded, deterministic training of the models a known-split benchmark attacks.

Two recipes, both a plain PyTorch loop (AdamW, gradient clipping at 1.0, linear warm-up then a **constant**
learning rate, batches of whole documents padded on the right, loss on every real token):

* :func:`fine_tune`: continue training a pretrained causal LM (the packaged SmolLM2-135M) on the member texts,
  as a real fine-tune would (1-3 epochs, learning rate around 1e-5 to 1e-4). The model before fine-tuning is
  the natural reference model.
* :func:`train_from_scratch`: a GPT-2-architecture model initialised from a seed and trained on the member texts
  (pretraining-style), with a byte-level BPE tokenizer trained by the ``tokenizers`` library on training text
  only (:func:`~llm_mia.known_split.gpt2.train_tokenizer`). A reference model is trained the same way on disjoint
  text from the same pool.

Snapshots are saved at chosen epochs of one run. Because the schedule is constant after warm-up, the snapshot
after epoch e is exactly the model a run of e epochs would give, so an epochs sweep (1, 2, 4) costs one run of
the longest.

Reproducibility: the initial weights come from ``torch.manual_seed(seed)``, the batch order of epoch e from
``numpy.random.default_rng([seed, e])``, and training runs under ``torch.use_deterministic_algorithms(True)``.
The same code, seed, data, library versions and thread count give bit-identical weights on the same CPU; the
record stores all of these. Different thread counts or CPUs may differ in the last float bits.

Modules: this one holds the two recipes; :mod:`llm_mia.known_split.training_config` what decides the weights
besides the data, :mod:`llm_mia.known_split.training_loop` the loop both recipes run,
:mod:`llm_mia.known_split.gpt2` the from-scratch tokenizer and model, :mod:`llm_mia.known_split.model_cache` the
cache.

Cache: :func:`~llm_mia.known_split.model_cache.cached_training` stores each run under
``<cache>/bench/models/<name>-<key>/`` (``key`` hashes the recipe, the training data's SHA-256, the seed and the
base model) with ``training.json``: config, seed, data manifest (id and SHA-256 of every training text), base
model identity, per-epoch mean loss, wall time, versions and the SHA-256 of every saved file. A complete record is
re-used, after checking the file hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_file, sha256_text, sha256_texts
from llm_mia.known_split.gpt2 import new_gpt2, train_tokenizer
from llm_mia.known_split.model_cache import TrainedModels, cached_training
from llm_mia.known_split.training_config import Gpt2Architecture, TrainingConfig
from llm_mia.known_split.training_loop import train_causal_lm


def data_manifest(documents: Sequence[Document]) -> list[dict[str, str]]:
    """id and SHA-256 of every training text, in training-set order."""
    return [{"id": d.id, "sha256": sha256_text(d.text)} for d in documents]


def _held_out_identity(config: TrainingConfig, held_out: Sequence[Document]) -> dict[str, Any]:
    """The held-out documents decide the weights only under early stopping; then they are part of the identity."""
    if config.defense is not None and config.defense.kind == "early_stopping":
        return {"held_out": data_manifest(held_out)}
    return {}


def fine_tune(
    documents: Sequence[Document],
    *,
    config: TrainingConfig,
    base: str = "smollm2-135m",
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    held_out: Sequence[Document] = (),
) -> TrainedModels:
    """Fine-tune a pretrained model (default the packaged SmolLM2-135M; all weights, or the top
    ``config.trainable_blocks`` blocks) on ``documents``.

    Snapshots at ``config.epochs``, cached (see :func:`cached_training`). The tokenizer is the base model's.
    ``held_out``: text of the members' distribution that early stopping reads (only with that defense).
    """
    from llm_mia.backends.local import ModelSpec, load_model, resolve_model_directory

    base_directory = resolve_model_directory(ModelSpec(name=base))
    identity = {
        "recipe": "fine-tune",
        "base": {
            "name": base,
            "config_sha256": sha256_file(base_directory / "config.json"),
            "weights_sha256": {p.name: sha256_file(p) for p in sorted(base_directory.glob("*.safetensors"))},
        },
        "training": config.to_dict(),
        "data": data_manifest(documents),
    } | _held_out_identity(config, held_out)

    def train(staging: Path, save: Callable[[int, Any, Any, float], None]) -> dict[str, Any]:
        loaded = load_model(ModelSpec(name=base, device=device))
        model, tokenizer = loaded.model, loaded.tokenizer
        record: dict[str, Any] = {}
        losses = train_causal_lm(
            model,
            tokenizer,
            [d.text for d in documents],
            config=config,
            on_epoch=lambda epoch, m, loss: save(epoch, m, tokenizer, loss),
            device=loaded.device,
            progress=progress,
            held_out=[d.text for d in held_out],
            record=record,
            checkpoint_activations=True,
        )
        return {"epoch_losses": losses} | record

    return cached_training(
        "finetune-" + Path(base).name,
        identity=identity,
        epochs=config.epochs,
        train=train,
        cache_root=cache_root,
        use_cache=use_cache,
    )


def train_from_scratch(
    documents: Sequence[Document],
    *,
    tokenizer_texts: Sequence[str],
    config: TrainingConfig,
    architecture: Gpt2Architecture = Gpt2Architecture(),  # noqa: B008 (frozen: one shared default is safe)
    role: str = "target",
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    held_out: Sequence[Document] = (),
) -> TrainedModels:
    """Train a GPT-2-architecture model from a seeded initialisation on ``documents``.

    The tokenizer is a byte-level BPE of ``architecture.vocab_size`` tokens trained on ``tokenizer_texts``
    (training text only, never evaluation non-members; pass the same texts for a target and its reference
    models so they share the tokenizer). ``role`` names the run in the cache (target, reference).
    """
    if architecture.n_positions < config.max_length:
        raise InputError(f"max_length {config.max_length} exceeds the model's {architecture.n_positions} positions")

    identity = {
        "recipe": "from-scratch",
        "role": role,
        "architecture": {"model": "GPT2LMHeadModel", **architecture.to_dict()},
        "tokenizer": {
            "kind": "byte-level BPE (tokenizers)",
            "vocab_size": architecture.vocab_size,
            "trained_on_sha256": sha256_texts(list(tokenizer_texts)),
            "trained_on_texts": len(tokenizer_texts),
        },
        "training": config.to_dict(),
        "data": data_manifest(documents),
    } | _held_out_identity(config, held_out)

    def train(staging: Path, save: Callable[[int, Any, Any, float], None]) -> dict[str, Any]:
        tokenizer = train_tokenizer(
            tokenizer_texts, vocab_size=architecture.vocab_size, directory=staging / "tokenizer"
        )
        model = new_gpt2(tokenizer, architecture, seed=config.seed)
        record: dict[str, Any] = {}
        losses = train_causal_lm(
            model,
            tokenizer,
            [d.text for d in documents],
            config=config,
            on_epoch=lambda epoch, m, loss: save(epoch, m, tokenizer, loss),
            device=device,
            progress=progress,
            held_out=[d.text for d in held_out],
            record=record,
        )
        return {"epoch_losses": losses} | record

    return cached_training(
        f"gpt2-{role}",
        identity=identity,
        epochs=config.epochs,
        train=train,
        cache_root=cache_root,
        use_cache=use_cache,
    )
