"""Training's two memory settings on tiny Llama and GPT-2 models: micro-batches add up to the whole batch's
gradient, and training only the top blocks changes those blocks and the final norm and nothing else; and the freed
heap given back to the operating system after a training run."""

from __future__ import annotations

import copy
import os
from dataclasses import replace

import pytest
import torch

from llm_mia.backends.memory import release_freed_memory
from llm_mia.defenses.training import parse_training_defense
from llm_mia.errors import InputError
from llm_mia.known_split.presets import get_preset
from llm_mia.known_split.training_config import TrainingConfig
from llm_mia.known_split.training_loop import _step, pad_batch, tokenize_for_training, train_causal_lm

TEXTS = [  # lengths differ, so that micro-batches hold different numbers of tokens
    "the river runs past the mill and the mill turns all day long while the miller sleeps in the loft",
    "a fox ran over the hill",
    "seven geese flew south over the lake at dawn and did not come back until the spring rains",
    "the baker sold bread",
    "rain fell on the roofs of the old harbour all through the night",
    "the ferry carried carts",
]


def gradients(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_micro_batches_add_up_to_the_whole_batch_gradient(tiny_loaded, arch) -> None:
    source = tiny_loaded[arch]
    sequences = tokenize_for_training(TEXTS, source.tokenizer, max_length=64)
    pad = source.tokenizer.pad_token_id or 0
    results = {}
    for micro in (None, 4, 2, 1):
        model = copy.deepcopy(source.model).float().train()
        loss, tokens = _step(model, model, sequences, pad, "cpu", private=False, micro_batch_size=micro)
        results[micro] = (loss, tokens, gradients(model))
    whole_loss, whole_tokens, whole = results[None]
    assert whole_tokens == sum(len(s) - 1 for s in sequences)
    for micro in (4, 2, 1):
        loss, tokens, split = results[micro]
        assert tokens == whole_tokens
        assert loss == pytest.approx(whole_loss, rel=1e-6)
        assert split.keys() == whole.keys()
        for name in whole:
            torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-7, msg=name)
    # the test can fail: averaging the micro-batches' own means, which weights a token by its micro-batch's size,
    # points the gradient elsewhere on these lengths (compared as unit vectors: the step clips the batch's norm)
    naive = copy.deepcopy(source.model).float().train()
    for start in (0, 2, 4):
        ids, attention = pad_batch(sequences[start : start + 2], pad)
        labels = ids.masked_fill(attention == 0, -100)
        (naive(input_ids=ids, attention_mask=attention, labels=labels).loss / 3).backward()
    unit_whole, unit_naive = unit(whole), unit(gradients(naive))
    assert max(float((unit_naive[n] - unit_whole[n]).abs().max()) for n in whole) > 1e-3


def unit(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    norm = sum(float((g * g).sum()) for g in grads.values()) ** 0.5
    return {name: g / norm for name, g in grads.items()}


def block_prefixes(model) -> tuple[str, str]:
    """(the name prefix of the top block's weights, the final norm's) in ``named_parameters``."""
    names = [name for name, _ in model.named_parameters()]
    if any(".layers." in n for n in names):
        top = max(int(n.split(".layers.")[1].split(".")[0]) for n in names if ".layers." in n)
        return f"model.layers.{top}.", "model.norm."
    top = max(int(n.split(".h.")[1].split(".")[0]) for n in names if ".h." in n)
    return f"transformer.h.{top}.", "transformer.ln_f."


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_top_blocks_train_and_every_other_weight_stays(tiny_loaded, arch) -> None:
    source = tiny_loaded[arch]
    model = copy.deepcopy(source.model).float()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = TrainingConfig(epochs=(1,), learning_rate=1e-2, batch_size=2, max_length=32, trainable_blocks=1)
    record: dict = {}
    train_causal_lm(
        model, source.tokenizer, TEXTS, config=config, on_epoch=lambda *_: None, progress=False, record=record
    )
    top, norm = block_prefixes(model)
    kept = {name for name in before if name.startswith((top, norm))}
    changed = {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert kept and changed == kept  # every weight of the top block and the norm moved, nothing else did
    assert record["trained_parameters"] == sum(before[name].numel() for name in kept)
    assert record["trained_parameters"] < sum(p.numel() for p in before.values()) / 2
    assert all(p.requires_grad for p in model.parameters())  # thawed after training


def test_trainable_blocks_refusals(tiny_loaded) -> None:
    run = dict(on_epoch=lambda *_: None, progress=False)
    llama = tiny_loaded["llama"]
    too_many = TrainingConfig(batch_size=2, max_length=32, trainable_blocks=99)
    with pytest.raises(InputError, match="exceeds the model's"):
        train_causal_lm(copy.deepcopy(llama.model), llama.tokenizer, TEXTS, config=too_many, **run)
    opt = tiny_loaded["opt"]  # blocks under model.decoder: not a family whose top blocks the loop knows
    with pytest.raises(InputError, match="leave trainable_blocks unset"):
        train_causal_lm(
            copy.deepcopy(opt.model), opt.tokenizer, TEXTS, config=replace(too_many, trainable_blocks=1), **run
        )
    assert all(p.requires_grad for p in opt.model.parameters())


def test_memory_settings_are_checked_and_named_in_the_identity_only_when_set() -> None:
    plain = TrainingConfig()
    assert "trainable_blocks" not in plain.to_dict() and "micro_batch_size" not in plain.to_dict()
    lean = TrainingConfig(batch_size=8, trainable_blocks=10, micro_batch_size=2)
    assert lean.to_dict()["trainable_blocks"] == 10 and lean.to_dict()["micro_batch_size"] == 2
    with pytest.raises(InputError, match="trainable_blocks"):
        TrainingConfig(trainable_blocks=0)
    with pytest.raises(InputError, match="micro_batch_size"):
        TrainingConfig(batch_size=4, micro_batch_size=5)
    with pytest.raises(InputError, match="DP-SGD"):
        TrainingConfig(micro_batch_size=2, defense=parse_training_defense("dp:epsilon=8"))
    # the demo's recipe uses both; the published benchmark sizes use neither (their cached models stay valid)
    assert get_preset("smollm2-wikipedia", "demo").training.trainable_blocks is not None
    for size in ("ci", "full"):
        training = get_preset("smollm2-wikipedia", size).training
        assert training.trainable_blocks is None and training.micro_batch_size is None


def resident_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the resident size from /proc")
def test_release_freed_memory_gives_the_freed_heap_back() -> None:
    """What training leaves behind, in small: once a large block has been freed, glibc serves blocks of that size
    from the heap, and freeing them does not shrink the process while a later block still sits above them."""
    big = bytearray(8 * 2**20)
    del big  # glibc's mmap threshold is now 8 MiB: the 1 MiB blocks below come from the heap
    blocks = [bytearray(b"x" * 2**20) for _ in range(192)]
    keep = blocks.pop()  # the block on top of the heap stays in use
    before = resident_bytes()
    del blocks
    kept_after_free = resident_bytes()
    if not release_freed_memory():
        pytest.skip("this C library has no malloc_trim")
    after = resident_bytes()
    assert before - kept_after_free < 64 * 2**20  # freeing alone gave little back ...
    assert kept_after_free - after > 128 * 2**20  # ... the trim gave back most of the 191 MiB
    assert len(keep) == 2**20
