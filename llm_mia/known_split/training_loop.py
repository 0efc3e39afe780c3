"""The training loop every known-split recipe runs (:func:`train_causal_lm`): AdamW, gradient clipping at 1.0,
linear warm-up then a constant learning rate, batches of whole documents padded on the right, loss on every real
token, under ``torch.use_deterministic_algorithms(True)`` with the batch order of epoch e drawn from
``numpy.random.default_rng([seed, e])``; training-time defenses (``llm_mia.defenses.training``) change it where
they apply. Also: tokenizing texts exactly as the extraction engine does for scoring, the held-out loss, early
stopping, the process's peak memory, and a fixed torch thread count.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.known_split.training_config import TrainingConfig

logger = logging.getLogger(__name__)


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
    from llm_mia.backends.local import special_prefix

    prefix = special_prefix(tokenizer)
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
    checkpoint_activations: bool = False,
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

    ``device``: ``cpu``, ``cuda[:N]`` or ``auto`` (:func:`device_for_training`: resolved here, so that no caller
    can hand torch a device it does not know).

    ``checkpoint_activations``: keep only each block's input during the forward pass and recompute the rest in
    the backward pass (transformers' gradient checkpointing, non-reentrant) where the model supports it and no
    defense hooks into the blocks (dropout, DP-SGD). The same operations run on the same values, so the weights
    are the same bits (tested); it trades about a third more compute for the activations of every block. Used by
    the fine-tune recipe.

    ``config.trainable_blocks`` and ``config.micro_batch_size`` (:class:`TrainingConfig`) lower the peak further:
    only the top blocks train (the others are frozen for the duration and thawed after), and a batch's forward
    and backward passes run a few documents at a time. ``record["trained_parameters"]`` says how many weights
    trained.
    """
    from tqdm.auto import tqdm

    device = device_for_training(device)
    record = record if record is not None else {}
    data = _TrainingData.of(texts, held_out, tokenizer, config)
    plan = _privacy_plan(config, len(data.sequences), record)  # refused here, before any training
    losses: list[float] = []
    with deterministic(config.seed), PeakMemory() as memory:
        model.to(device).train()
        with _block_options(model, config, checkpoint_activations):
            record["trained_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
            trained, optimizer, scheduler = _optimizer(model, config, plan)
            stopping = (
                _EarlyStopping(model, data.held, data.pad, device, config.defense.get("patience"))
                if data.held
                else None
            )
            if 0 in config.epochs:
                model.eval()
                on_epoch(0, model, float("nan"))
                model.train()
            bar = tqdm(
                total=data.steps_per_epoch * config.total_epochs, desc="training", unit="step", disable=not progress
            )
            for epoch in range(1, config.total_epochs + 1):
                total, count = 0.0, 0
                batches = _epoch_batches(data, config, plan, epoch)
                for batch_index in [] if stopping is not None and stopping.stopped else batches:
                    bar.update(1)
                    if not batch_index:  # an empty Poisson batch: no update (the accountant counted the step anyway)
                        continue
                    loss, tokens = _step(
                        trained,
                        model,
                        [data.sequences[i] for i in batch_index],
                        data.pad,
                        device,
                        private=plan is not None,
                        micro_batch_size=config.micro_batch_size,
                    )
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    total += loss * tokens
                    count += tokens
                    bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")
                losses.append(total / count if count else float("nan"))
                logger.info("epoch %d: mean training loss %.4f", epoch, losses[-1])
                if stopping is not None:
                    stopping.after_epoch(epoch)
                if epoch in config.epochs:
                    _snapshot(epoch, model, losses[-1], stopping, on_epoch)
            bar.close()
            if plan is not None:
                trained.remove_hooks()
        model.eval()
    if stopping is not None:
        record["early_stopping"] = stopping.describe()
    record["peak_rss_gib"] = memory.peak_gib
    return losses


def device_for_training(requested: str = "cpu") -> str:
    """The device to train on (``auto``: cuda when torch sees one, else cpu); on CUDA, set the cuBLAS workspace
    needed for deterministic algorithms."""
    if requested.startswith("cuda") or requested == "auto":
        import torch

        if torch.cuda.is_available():
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            return "cuda" if requested == "auto" else requested
        if requested != "auto":
            raise LlmMiaError(f"device {requested!r} requested but torch sees no CUDA device; use cpu")
    return "cpu"


@dataclass(frozen=True)
class _TrainingData:
    """The training sequences (:func:`tokenize_for_training`), the pad id, the held-out sequences early stopping
    reads (empty without that defense) and the optimizer steps per epoch."""

    sequences: list[list[int]]
    pad: int
    held: list[list[int]]
    steps_per_epoch: int

    @classmethod
    def of(cls, texts: Sequence[str], held_out: Sequence[str], tokenizer: Any, config: TrainingConfig) -> _TrainingData:
        sequences = tokenize_for_training(texts, tokenizer, max_length=config.max_length)
        if not sequences:
            raise InputError("nothing to train on: every text is shorter than two tokens")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
        kind = _defense_kind(config)
        stopping_on = kind == "early_stopping" and len(held_out) > 0
        held = tokenize_for_training(held_out, tokenizer, max_length=config.max_length) if stopping_on else []
        if kind == "early_stopping" and not held:
            raise InputError("early stopping needs held-out text of the members' distribution; none was given")
        return cls(sequences, pad, held, -(-len(sequences) // config.batch_size))


def _defense_kind(config: TrainingConfig) -> str | None:
    return config.defense.kind if config.defense is not None else None


def _privacy_plan(config: TrainingConfig, n_sequences: int, record: dict[str, Any]) -> Any:
    """DP-SGD's plan (``llm_mia.defenses.training.plan_privacy``; refused when the budget cannot be met), recorded;
    None without that defense."""
    from llm_mia.defenses.training import plan_privacy

    if _defense_kind(config) != "dp":
        return None
    plan = plan_privacy(
        config.defense, n_sequences=n_sequences, batch_size=config.batch_size, epochs=config.total_epochs
    )
    record["privacy"] = plan.to_dict()
    return plan


@contextlib.contextmanager
def _block_options(model: Any, config: TrainingConfig, checkpoint_activations: bool) -> Iterator[None]:
    """For the duration: every weight below the top ``config.trainable_blocks`` blocks frozen (when set), dropout
    hooks on the blocks (that defense), and activation checkpointing where asked for, supported, and no defense
    hooks into the blocks."""
    from llm_mia.defenses.training import apply_dropout

    kind = _defense_kind(config)
    frozen = _freeze_below_top_blocks(model, config.trainable_blocks) if config.trainable_blocks else []
    hooks = apply_dropout(model, config.defense.get("p")) if kind == "dropout" else []
    checkpointing = (
        checkpoint_activations
        and kind not in ("dropout", "dp")
        and getattr(model, "supports_gradient_checkpointing", False)
    )
    if checkpointing:
        _checkpoint_activations(model, on=True)
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
        if checkpointing:
            _checkpoint_activations(model, on=False)
        for parameter in frozen:
            parameter.requires_grad_(True)


def _freeze_below_top_blocks(model: Any, top: int) -> list[Any]:
    """Freeze every weight of ``model`` except its top ``top`` transformer blocks and its final norm; returns the
    weights it froze (to thaw them after). Llama-family models keep their blocks in ``layers`` and the final norm
    in ``norm``, GPT-2 in ``h`` and ``ln_f``, GPT-NeoX (Pythia) in ``layers`` and ``final_layer_norm``."""
    base = model.base_model
    for blocks_name, norm_name in (("layers", "norm"), ("h", "ln_f"), ("layers", "final_layer_norm")):
        blocks, norm = getattr(base, blocks_name, None), getattr(base, norm_name, None)
        if blocks is not None and norm is not None:
            break
    else:
        raise InputError(
            f"training only the top blocks needs a Llama-, GPT-2- or GPT-NeoX-family model, not "
            f"{type(model).__name__}: "
            "leave trainable_blocks unset to train every weight"
        )
    if top > len(blocks):
        raise InputError(f"trainable_blocks {top} exceeds the model's {len(blocks)} blocks")
    kept = {id(p) for module in [*blocks[len(blocks) - top :], norm] for p in module.parameters()}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in kept]
    for parameter in frozen:
        parameter.requires_grad_(False)
    return frozen


def _optimizer(model: Any, config: TrainingConfig, plan: Any) -> tuple[Any, Any, Any]:
    """(the module to call, AdamW, the warm-up schedule): with a privacy plan, Opacus's private module and
    optimizer (``llm_mia.defenses.training.make_private``); weight decay and learning rate as the defense sets
    them."""
    import torch

    from llm_mia.defenses.training import make_private

    kind = _defense_kind(config)
    decay = config.defense.get("lambda") if kind == "weight_decay" else config.weight_decay
    rate = config.defense.get("lr", config.learning_rate) if kind == "dp" else config.learning_rate

    def adamw(parameters: Any) -> Any:
        return torch.optim.AdamW(parameters, lr=rate, weight_decay=decay, betas=(0.9, 0.999))

    if plan is not None:
        trained, optimizer = make_private(model, adamw, plan, batch_size=config.batch_size, seed=config.seed)
    else:  # frozen weights get no optimizer state
        trained, optimizer = model, adamw([p for p in model.parameters() if p.requires_grad])
    warmup = config.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
    )
    return trained, optimizer, scheduler


def _epoch_batches(data: _TrainingData, config: TrainingConfig, plan: Any, epoch: int) -> list[list[int]]:
    """Epoch ``epoch``'s batches as indexes into the sequences: Poisson-sampled under DP-SGD (some may be empty),
    else a seeded permutation cut into batches."""
    from llm_mia.defenses.training import poisson_batches

    if plan is not None:
        first = (epoch - 1) * data.steps_per_epoch
        return poisson_batches(
            len(data.sequences), plan.sample_rate, data.steps_per_epoch, seed=config.seed, first_step=first
        )
    return _batches(data.sequences, batch_size=config.batch_size, seed=config.seed, epoch=epoch)


def _step(
    trained: Any,
    model: Any,
    batch: list[list[int]],
    pad: int,
    device: str,
    *,
    private: bool,
    micro_batch_size: int | None = None,
) -> tuple[float, int]:
    """One batch's forward and backward pass (the optimizer steps after): under DP-SGD the per-sequence loss whose
    per-example gradients Opacus clips, else the token-mean loss and the global clip at norm 1.0. With
    ``micro_batch_size`` smaller than the batch, the passes run that many documents at a time, each micro-batch's
    summed token loss divided by the whole batch's tokens, so that the gradients add up to the batch's. Returns
    (the batch's loss, its predicted tokens)."""
    import torch

    from llm_mia.defenses.training import sequence_mean_loss

    input_ids, attention = pad_batch(batch, pad)
    tokens = int(attention[:, 1:].sum())
    if private:
        loss = sequence_mean_loss(trained, input_ids.to(device), attention.to(device))
        loss.backward()
        return float(loss.detach()), tokens
    if micro_batch_size is None or micro_batch_size >= len(batch):
        loss = _token_loss(trained, input_ids, attention, device)
        loss.backward()
        total = float(loss.detach())
    else:
        total = 0.0
        for start in range(0, len(batch), micro_batch_size):
            part_ids, part_attention = pad_batch(batch[start : start + micro_batch_size], pad)
            loss = _token_loss(trained, part_ids, part_attention, device, batch_tokens=tokens)
            loss.backward()
            total += float(loss.detach())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    return total, tokens


def _token_loss(trained: Any, input_ids: Any, attention: Any, device: str, *, batch_tokens: int | None = None) -> Any:
    """Next-token cross-entropy over the real tokens (padding masked by -100 labels): their mean, or with
    ``batch_tokens`` their sum divided by it (a micro-batch's share of its batch's mean). No key/value cache:
    training never reads one back."""
    labels = input_ids.masked_fill(attention == 0, -100)
    share = {} if batch_tokens is None else {"num_items_in_batch": batch_tokens}
    return trained(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        labels=labels.to(device),
        use_cache=False,
        **share,
    ).loss


def _snapshot(epoch: int, model: Any, loss: float, stopping: Any, on_epoch: Callable[[int, Any, float], None]) -> None:
    """Hand epoch ``epoch``'s snapshot to ``on_epoch`` in eval mode: the model, or under early stopping the best
    weights so far."""
    model.eval()
    if stopping is not None:
        stopping.save_best(epoch, lambda trained: on_epoch(epoch, trained, loss))
    else:
        on_epoch(epoch, model, loss)
    model.train()


def _checkpoint_activations(model: Any, *, on: bool) -> None:
    """Turn transformers' activation (gradient) checkpointing on, non-reentrant, or off; the method's name
    changed in transformers 5 (``activation_checkpointing_*``), the old one still works there with a warning."""
    if hasattr(model, "activation_checkpointing_enable"):
        if on:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.activation_checkpointing_disable()
    elif on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()


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
