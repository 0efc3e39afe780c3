"""Seeded, deterministic training of the models a known-split benchmark attacks.

Two recipes, both a plain PyTorch loop (AdamW, gradient clipping at 1.0, linear warm-up then a **constant**
learning rate, batches of whole documents padded on the right, loss on every real token):

* :func:`fine_tune`: continue training a pretrained causal LM (the packaged SmolLM2-135M) on the member texts,
  as a real fine-tune would (1-3 epochs, learning rate around 1e-5 to 1e-4). The model before fine-tuning is
  the natural reference model.
* :func:`train_from_scratch`: a GPT-2-architecture model initialised from a seed and trained on the member texts
  (pretraining-style), with a byte-level BPE tokenizer trained by the ``tokenizers`` library on training text
  only (:func:`train_tokenizer`). A reference model is trained the same way on disjoint text from the same
  pool.

Snapshots are saved at chosen epochs of one run. Because the schedule is constant after warm-up, the snapshot
after epoch e is exactly the model a run of e epochs would give, so an epochs sweep (1, 2, 4) costs one run of
the longest.

Reproducibility: the initial weights come from ``torch.manual_seed(seed)``, the batch order of epoch e from
``numpy.random.default_rng([seed, e])``, and training runs under ``torch.use_deterministic_algorithms(True)``.
The same code, seed, data, library versions and thread count give bit-identical weights on the same CPU; the
record stores all of these. Different thread counts or CPUs may differ in the last float bits.

Cache: :func:`cached_training` stores each run under ``<cache>/bench/models/<name>-<key>/`` (``key`` hashes
the recipe, the training data's SHA-256, the seed and the base model) with ``training.json``: config, seed, data
manifest (id and SHA-256 of every training text), base model identity, per-epoch mean loss, wall time,
versions and the SHA-256 of every saved file. A complete record is re-used, after checking the file hashes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import (
    cache_dir,
    hash_directory,
    sha256_file,
    sha256_json_key,
    sha256_text,
    sha256_texts,
    versions,
)

logger = logging.getLogger(__name__)

TRAINING_RECORD = "training.json"
RECORD_VERSION = 1


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


# --------------------------------------------------------------------------------------------- helpers


def data_manifest(documents: Sequence[Document]) -> list[dict[str, str]]:
    """id and SHA-256 of every training text, in training-set order."""
    return [{"id": d.id, "sha256": sha256_text(d.text)} for d in documents]


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch and switch on deterministic algorithms for the duration; restores the previous setting."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (None: leave torch's setting); restores the previous count.

    On a machine shared with other work, one thread is often several times faster than two: waiting OpenMP
    threads spin while the cores are busy elsewhere. Bitwise reproducibility holds for a fixed thread count.
    """
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def tokenize_for_training(texts: Sequence[str], tokenizer: Any, *, max_length: int) -> list[list[int]]:
    """Token sequences to train on, tokenized exactly as the extraction engine tokenizes for scoring.

    Per text: the tokenizer's special prefix (BOS, when it adds one) + the content tokens (special-token
    strings inside the text stay plain text, as in scoring) + EOS when the tokenizer has one. A sequence longer
    than ``max_length`` is cut into consecutive pieces of at most ``max_length`` tokens, so every token is trained
    on (nothing is silently truncated).
    """
    from llm_mia.backends.local import _special_prefix

    prefix = _special_prefix(tokenizer)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    encoded = tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False)
    sequences: list[list[int]] = []
    for ids in encoded["input_ids"]:
        full = [*prefix, *ids, *eos]
        sequences.extend(full[start : start + max_length] for start in range(0, len(full), max_length))
    return [s for s in sequences if len(s) >= 2]


def _batches(sequences: Sequence[list[int]], *, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    import numpy as np

    order = np.random.default_rng([seed, epoch]).permutation(len(sequences)).tolist()
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(batch: Sequence[list[int]], pad: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of right-padded ``batch``; which positions are real comes from the lengths."""
    import torch

    width = max(len(s) for s in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, sequence in enumerate(batch):
        input_ids[row, : len(sequence)] = torch.tensor(sequence)
        attention[row, : len(sequence)] = 1
    return input_ids, attention


def held_out_loss(model: Any, sequences: Sequence[list[int]], *, pad: int, device: str) -> float:
    """Token-weighted mean next-token loss of ``model`` on ``sequences`` (eval mode, no gradients)."""
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(sequences), 8):
            input_ids, attention = pad_batch(sequences[start : start + 8], pad)
            labels = input_ids.masked_fill(attention == 0, -100)
            out = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device))
            tokens = int(attention[:, 1:].sum())
            total += float(out.loss) * tokens
            count += tokens
    return total / max(count, 1)


def train_causal_lm(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    config: TrainingConfig,
    on_epoch: Callable[[int, Any, float], None],
    device: str = "cpu",
    progress: bool = True,
    held_out: Sequence[str] = (),
    record: dict[str, Any] | None = None,
) -> list[float]:
    """Train ``model`` in place on ``texts``; after every epoch in ``config.epochs`` call ``on_epoch(epoch,
    model, mean_loss)`` (epoch 0 = before training). Returns the mean training loss of every epoch.

    Loss: mean next-token cross-entropy over the real tokens of a batch (padding masked out by -100 labels,
    built from sequence lengths, never from the pad id). AdamW with betas (0.9, 0.999), eps 1e-8; gradients
    clipped to norm 1.0; learning rate linear from 0 over ``warmup_steps``, then constant.

    ``config.defense`` changes this as ``llm_mia.defenses.training`` describes (DP-SGD: Poisson batches, per-
    sequence loss, per-example clipping and noise instead of the global clip; early stopping reads ``held_out``).
    ``record``, when given, receives what the defense did (privacy plan and epsilon, held-out losses, the epoch
    each snapshot comes from, peak memory).
    """
    import torch
    from tqdm.auto import tqdm

    from llm_mia.defenses.training import (
        apply_dropout,
        make_private,
        plan_privacy,
        poisson_batches,
        sequence_mean_loss,
    )

    sequences = tokenize_for_training(texts, tokenizer, max_length=config.max_length)
    if not sequences:
        raise InputError("nothing to train on: every text is shorter than two tokens")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    defense = config.defense
    kind = defense.kind if defense is not None else None
    record = record if record is not None else {}
    stopping_on = kind == "early_stopping" and len(held_out) > 0
    held = tokenize_for_training(held_out, tokenizer, max_length=config.max_length) if stopping_on else []
    if kind == "early_stopping" and not held:
        raise InputError("early stopping needs held-out text of the members' distribution; none was given")
    losses: list[float] = []
    steps_per_epoch = -(-len(sequences) // config.batch_size)
    plan = None
    if kind == "dp":  # refused here, before any training, when the budget cannot be met
        plan = plan_privacy(
            defense, n_sequences=len(sequences), batch_size=config.batch_size, epochs=config.total_epochs
        )
        record["privacy"] = plan.to_dict()
    with deterministic(config.seed), PeakMemory() as memory:
        model.to(device).train()
        hooks = apply_dropout(model, defense.get("p")) if kind == "dropout" else []
        decay = defense.get("lambda") if kind == "weight_decay" else config.weight_decay

        rate = defense.get("lr", config.learning_rate) if kind == "dp" else config.learning_rate

        def adamw(parameters: Any) -> Any:
            return torch.optim.AdamW(parameters, lr=rate, weight_decay=decay, betas=(0.9, 0.999))

        if plan is not None:
            trained, optimizer = make_private(model, adamw, plan, batch_size=config.batch_size, seed=config.seed)
        else:
            trained, optimizer = model, adamw(model.parameters())
        warmup = config.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        stopping = _EarlyStopping(model, held, pad, device, defense.get("patience")) if held else None
        if 0 in config.epochs:
            model.eval()
            on_epoch(0, model, float("nan"))
            model.train()
        bar = tqdm(total=steps_per_epoch * config.total_epochs, desc="training", unit="step", disable=not progress)
        for epoch in range(1, config.total_epochs + 1):
            total, count = 0.0, 0
            if plan is not None:
                first = (epoch - 1) * steps_per_epoch
                batches = poisson_batches(
                    len(sequences), plan.sample_rate, steps_per_epoch, seed=config.seed, first_step=first
                )
            else:
                batches = _batches(sequences, batch_size=config.batch_size, seed=config.seed, epoch=epoch)
            for batch_index in [] if stopping is not None and stopping.stopped else batches:
                bar.update(1)
                if not batch_index:  # an empty Poisson batch: no update (the accountant counted the step anyway)
                    continue
                input_ids, attention = pad_batch([sequences[i] for i in batch_index], pad)
                if plan is not None:
                    loss = sequence_mean_loss(trained, input_ids.to(device), attention.to(device))
                    loss.backward()
                else:
                    labels = input_ids.masked_fill(attention == 0, -100)
                    loss = trained(
                        input_ids=input_ids.to(device), attention_mask=attention.to(device), labels=labels.to(device)
                    ).loss
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                tokens = int(attention[:, 1:].sum())
                total += float(loss.detach()) * tokens
                count += tokens
                bar.set_postfix(epoch=epoch, loss=f"{float(loss.detach()):.3f}")
            losses.append(total / count if count else float("nan"))
            logger.info("epoch %d: mean training loss %.4f", epoch, losses[-1])
            if stopping is not None:
                stopping.after_epoch(epoch)
            if epoch in config.epochs:
                model.eval()
                if stopping is not None:

                    def save(trained: Any, e: int = epoch) -> None:
                        on_epoch(e, trained, losses[-1])

                    stopping.save_best(epoch, save)
                else:
                    on_epoch(epoch, model, losses[-1])
                model.train()
        bar.close()
        for hook in hooks:
            hook.remove()
        if plan is not None:
            trained.remove_hooks()
        model.eval()
    if stopping is not None:
        record["early_stopping"] = stopping.describe()
    record["peak_rss_gib"] = memory.peak_gib
    return losses


class PeakMemory:
    """The process's largest resident set size while the block runs (sampled every 0.1 s from /proc; None where
    there is no /proc). ru_maxrss would not do: it is the high-water mark of the whole process so far."""

    def __init__(self) -> None:
        self.peak: int | None = None
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int | None:
        try:
            with open("/proc/self/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def _sample(self) -> None:
        while True:
            rss = self._rss()
            if rss is not None:
                self.peak = max(self.peak or 0, rss)
            if self._stop.wait(0.1):
                return

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_gib(self) -> float | None:
        return None if self.peak is None else round(self.peak / 2**30, 2)


class _EarlyStopping:
    """Held-out loss after every epoch (epoch 0: before training); keeps the best weights, and counts epochs
    without improvement until ``patience`` is reached."""

    def __init__(self, model: Any, held: Sequence[list[int]], pad: int, device: str, patience: int) -> None:
        self.model, self.held, self.pad, self.device, self.patience = model, held, pad, device, patience
        self.losses = [held_out_loss(model, held, pad=pad, device=device)]
        model.train()
        self.best_epoch, self.best = 0, self._copy()
        self.stopped = False
        self.chosen: dict[int, int] = {}  # snapshot epoch: the epoch whose weights it holds

    def _copy(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def after_epoch(self, epoch: int) -> None:
        if self.stopped:
            self.losses.append(self.losses[-1])
            return
        loss = held_out_loss(self.model, self.held, pad=self.pad, device=self.device)
        self.model.train()
        self.losses.append(loss)
        if loss < min(self.losses[:-1]):
            self.best_epoch, self.best = epoch, self._copy()
        elif epoch - self.best_epoch >= self.patience:
            self.stopped = True

    def save_best(self, epoch: int, save: Callable[[Any], None]) -> None:
        self.chosen[epoch] = self.best_epoch
        if self.best_epoch == epoch:
            save(self.model)
            return
        current = self._copy()
        self.model.load_state_dict(self.best)
        save(self.model)
        self.model.load_state_dict(current)

    def describe(self) -> dict[str, Any]:
        return {
            "held_out_losses": self.losses,
            "snapshot_from_epoch": {str(k): v for k, v in self.chosen.items()},
            "stopped": self.stopped,
        }


def train_tokenizer(texts: Sequence[str], *, vocab_size: int, directory: Path) -> Any:
    """A byte-level BPE (GPT-2 style: no BOS, ``<|endoftext|>`` as EOS and pad) trained on ``texts`` only.

    Trained with the ``tokenizers`` library (deterministic for the same texts and settings), saved to
    ``directory`` as a ``transformers`` fast tokenizer, and returned.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=eos,
        eos_token=eos,
        pad_token=eos,
        padding_side="right",
        model_max_length=1_000_000,
        clean_up_tokenization_spaces=False,
    )
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(directory)
    return tokenizer


def new_gpt2(tokenizer: Any, architecture: Gpt2Architecture, *, seed: int) -> Any:
    """A GPT-2 with weights initialised from ``seed`` for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=architecture.n_positions,
        n_embd=architecture.n_embd,
        n_layer=architecture.n_layer,
        n_head=architecture.n_head,
        resid_pdrop=architecture.dropout,
        embd_pdrop=architecture.dropout,
        attn_pdrop=architecture.dropout,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).float()  # float32, as .to(torch.float32) (which transformers types wrongly)


# --------------------------------------------------------------------------------------------- cache


def _environment() -> dict[str, str | None]:
    """Package versions, torch threads and the processor, for the training record."""
    import torch

    return {
        **versions(),
        "torch_threads": str(torch.get_num_threads()),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }


@dataclass(frozen=True)
class TrainedModels:
    """A cached training run: the snapshot directory of every saved epoch and the run record."""

    directory: Path
    snapshots: dict[int, Path]
    record: dict[str, Any]
    reused: bool


def _check_record(directory: Path, epochs: Sequence[int], verify: bool) -> dict[str, Any] | None:
    record_path = directory / TRAINING_RECORD
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record.get("status") != "complete":
        return None
    for epoch in epochs:
        snapshot = directory / f"epoch-{epoch}"
        expected = record["snapshots"].get(str(epoch), {}).get("files")
        if expected is None or not snapshot.is_dir():
            return None
        if verify and hash_directory(snapshot) != expected:
            raise LlmMiaError(
                f"{snapshot}: files differ from the hashes recorded at training time; delete {directory} to retrain"
            )
    return record


def cached_training(
    name: str,
    *,
    identity: dict[str, Any],
    epochs: Sequence[int],
    train: Callable[[Path, Callable[[int, Any, Any, float], None]], dict[str, Any]],
    cache_root: Path | None = None,
    use_cache: bool = True,
    verify: bool = True,
) -> TrainedModels:
    """Run ``train`` once per ``identity`` and keep its snapshots; later calls re-use them.

    ``identity``: everything that decides the weights (recipe, data manifest, seed, base model); its hash
    names the directory. ``train(staging, save)`` trains, calling ``save(epoch, model, tokenizer, loss)`` for
    each snapshot, and returns extra record fields. Writes go to a staging directory renamed into place,
    so an interrupted run leaves nothing that looks complete.
    """

    payload = json.dumps(identity, sort_keys=True, default=str).encode("utf-8")
    key = sha256_json_key(payload)
    root = (cache_root or cache_dir()) / "bench" / "models"
    directory = root / f"{name}-{key}"
    if use_cache:
        record = _check_record(directory, epochs, verify)
        if record is not None:
            logger.info("re-using trained models in %s", directory)
            snapshots = {e: directory / f"epoch-{e}" for e in epochs}
            return TrainedModels(directory, snapshots, record, reused=True)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=root))
    snapshot_records: dict[str, Any] = {}

    def save(epoch: int, model: Any, tokenizer: Any, loss: float) -> None:
        target = staging / f"epoch-{epoch}"
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        snapshot_records[str(epoch)] = {
            "mean_training_loss": None if loss != loss else loss,
            "files": hash_directory(target),
        }

    started = time.perf_counter()
    try:
        extra = train(staging, save)
        record = {
            "format": "llm-mia training",
            "version": RECORD_VERSION,
            "name": name,
            "key": key,
            "status": "complete",
            **identity,
            **extra,
            "snapshots": snapshot_records,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "environment": _environment(),
        }
        (staging / TRAINING_RECORD).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    snapshots = {e: directory / f"epoch-{e}" for e in epochs}
    return TrainedModels(directory, snapshots, record, reused=False)


# --------------------------------------------------------------------------------------------- recipes


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
    """Fine-tune a pretrained model (default the packaged SmolLM2-135M, all weights) on ``documents``.

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
    architecture: Gpt2Architecture = Gpt2Architecture(),
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


def device_for_training(requested: str = "cpu") -> str:
    """The device to train on; on CUDA, set the cuBLAS workspace needed for deterministic algorithms."""
    if requested.startswith("cuda") or requested == "auto":
        import torch

        if torch.cuda.is_available():
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            return "cuda" if requested == "auto" else requested
        if requested != "auto":
            raise LlmMiaError(f"device {requested!r} requested but torch sees no CUDA device; use cpu")
    return "cpu"
