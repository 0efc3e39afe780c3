"""Training-time defenses: DP-SGD against a plain step, its accounting and refusals, dropout, early stopping."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from llm_mia.defenses.training import (
    PrivacyPlan,
    apply_dropout,
    make_private,
    parse_training_defense,
    plan_privacy,
    poisson_batches,
    sequence_mean_loss,
)
from llm_mia.errors import LlmMiaError
from llm_mia.known_split.training_config import TrainingConfig
from llm_mia.known_split.training_loop import pad_batch, train_causal_lm

TEXTS = [
    "the river runs past the mill and the mill turns all day",
    "a fox ran over the hill in the snow",
    "seven geese flew south over the lake at dawn",
    "the baker sold bread and cakes to the town",
    "rain fell on the roofs of the old harbour",
    "the ferry carried carts and horses across the bay",
]


def keep_snapshots(saved: dict):
    """An ``on_epoch`` that copies each snapshot's weights into ``saved``."""
    return lambda epoch, model, loss: saved.update({epoch: {k: v.clone() for k, v in model.state_dict().items()}})


def batch(tokenizer, texts):
    """The texts' token ids as a right-padded batch, the way training pads them."""
    return pad_batch([tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts], pad=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_dp_step_without_noise_or_clipping_equals_a_plain_step(tiny_loaded, arch) -> None:
    """Noise 0 and a clipping bound no gradient reaches: DP-SGD's averaged per-example gradients are the batch
    gradient, so one step lands on the plain step's weights (1e-6). The step is SGD with learning rate 1 (the
    update is the gradient itself): AdamW's first step is m / sqrt(v) = sign(g) wherever |g| >> eps, which turns a
    1e-9 rounding difference in a near-zero gradient coordinate into a full learning-rate step."""
    source = tiny_loaded[arch]
    input_ids, attention = batch(source.tokenizer, TEXTS[:4])
    sgd = lambda params: torch.optim.SGD(params, lr=1.0)  # noqa: E731

    plain = copy.deepcopy(source.model).float().train()
    optimizer = sgd(plain.parameters())
    sequence_mean_loss(plain, input_ids, attention).backward()
    optimizer.step()

    private = copy.deepcopy(source.model).float().train()
    plan = PrivacyPlan(sample_rate=0.5, steps=1, noise_multiplier=0.0, clip=1e9, delta=1e-3)
    wrapped, dp_optimizer = make_private(private, sgd, plan, batch_size=4, seed=0)
    sequence_mean_loss(wrapped, input_ids, attention).backward()
    dp_optimizer.step()
    wrapped.remove_hooks()

    moved = 0
    for (name, a), b in zip(plain.named_parameters(), private.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=0), name
        moved += int(not torch.equal(a, source.model.get_parameter(name)))
    assert moved > 10  # the step changed the weights: the comparison is not between two untouched models


def test_clipping_and_noise_change_the_step(tiny_loaded) -> None:
    source = tiny_loaded["llama"]
    input_ids, attention = batch(source.tokenizer, TEXTS[:4])
    sgd = lambda params: torch.optim.SGD(params, lr=1.0)  # noqa: E731
    results = []
    for noise, clip in ((0.0, 1e9), (0.0, 1e-3), (1.0, 1e-3)):
        model = copy.deepcopy(source.model).float().train()
        wrapped, optimizer = make_private(model, sgd, PrivacyPlan(0.5, 1, noise, clip, 1e-3), batch_size=4, seed=0)
        sequence_mean_loss(wrapped, input_ids, attention).backward()
        optimizer.step()
        wrapped.remove_hooks()
        pairs = zip(model.parameters(), source.model.parameters(), strict=True)
        results.append(torch.cat([(p - q).flatten() for p, q in pairs]))
    unclipped, clipped, noisy = results
    # SGD with lr 1: the update is minus the privatised gradient; clipped to 1e-3 per example, its norm is <= 1e-3
    assert clipped.norm() <= 1e-3 * (1 + 1e-4) < unclipped.norm()
    # noise of standard deviation noise * clip / batch = 2.5e-4 per coordinate
    assert (noisy - clipped).std().item() == pytest.approx(1.0 * 1e-3 / 4, rel=0.05)


@pytest.mark.slow
def test_privacy_plan_meets_its_target_and_refuses_what_it_cannot() -> None:
    plan = plan_privacy(parse_training_defense("dp:epsilon=3"), n_sequences=64, batch_size=8, epochs=4)
    assert plan.steps == 32 and plan.sample_rate == 0.125 and plan.delta == pytest.approx(1 / 64)
    assert 2.9 <= plan.epsilon() <= 3.0  # the solved noise spends the budget, within Opacus' 0.01 tolerance
    assert plan.epsilon(steps=8) < plan.epsilon()
    stronger = plan_privacy(parse_training_defense("dp:epsilon=1"), n_sequences=64, batch_size=8, epochs=4)
    assert stronger.noise_multiplier > plan.noise_multiplier
    fixed = plan_privacy(parse_training_defense("dp:noise=1.0"), n_sequences=64, batch_size=8, epochs=4)
    with pytest.raises(LlmMiaError, match=rf"would spend epsilon {fixed.epsilon():.3g} at delta 0.0156, above max"):
        plan_privacy(parse_training_defense("dp:noise=1.0;max_epsilon=0.5"), n_sequences=64, batch_size=8, epochs=4)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dp:epsilon=0", "epsilon > 0"),
        ("dp:epsilon=-2", "epsilon > 0"),
        ("dp:noise=-1", "noise multiplier >= 0"),
        ("dp", "exactly one of epsilon"),
        ("dp:epsilon=3;noise=1", "exactly one of epsilon"),
        ("dp:epsilon=3;delta=2", "0 < delta < 1"),
        ("dp:epsilon=3;lr=0", "lr > 0"),
        ("dropout:p=1.5", "0 <= P < 1"),
        ("weight_decay:lambda=-0.1", "L >= 0"),
        ("early_stopping:patience=0", "patience >= 1"),
        ("pruning:x=1", "unknown kind 'pruning'; valid: dp, weight_decay, dropout, early_stopping"),
    ],
)
def test_bad_training_defenses_name_the_valid_range(spec, message) -> None:
    with pytest.raises(LlmMiaError, match=message):
        parse_training_defense(spec)


def test_poisson_batches_are_seeded_and_sample_at_the_rate() -> None:
    first = poisson_batches(1000, 0.1, 50, seed=3)
    assert first == poisson_batches(1000, 0.1, 50, seed=3)
    assert first[10:] == poisson_batches(1000, 0.1, 40, seed=3, first_step=10)  # resumes mid-run identically
    sizes = np.array([len(b) for b in first])
    assert sizes.mean() == pytest.approx(100, rel=0.05) and sizes.std() > 0  # Poisson, not fixed


@pytest.mark.train
def test_dp_training_runs_end_to_end_reproducibly_and_records_its_epsilon(tiny_loaded) -> None:
    source = tiny_loaded["llama"]
    config = TrainingConfig(
        epochs=(2,), learning_rate=1e-2, batch_size=2, defense=parse_training_defense("dp:epsilon=8")
    )
    weights, records = [], []
    for _ in range(2):
        model = copy.deepcopy(source.model)
        record: dict = {}
        saved = {}
        train_causal_lm(
            model,
            source.tokenizer,
            TEXTS,
            config=config,
            on_epoch=keep_snapshots(saved),
            progress=False,
            record=record,
        )
        weights.append(saved[2])
        records.append(record)
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    privacy = records[0]["privacy"]
    assert privacy["steps"] == 6 and 7.9 <= privacy["epsilon"] <= 8.0 and privacy["delta"] == pytest.approx(1 / 6)
    assert any(not torch.equal(weights[0][k], source.model.state_dict()[k]) for k in weights[0])


@pytest.mark.slow
def test_dropout_is_active_in_training_only(tiny_loaded) -> None:
    for arch in ("llama", "gpt2"):
        model = copy.deepcopy(tiny_loaded[arch].model)
        input_ids, attention = batch(tiny_loaded[arch].tokenizer, TEXTS[:2])
        handles = apply_dropout(model, 0.5)
        model.eval()
        with torch.no_grad():
            eval_a = model(input_ids=input_ids, attention_mask=attention).logits
            eval_b = model(input_ids=input_ids, attention_mask=attention).logits
            model.train()
            train_out = model(input_ids=input_ids, attention_mask=attention).logits
        assert torch.equal(eval_a, eval_b) and not torch.allclose(eval_a, train_out, atol=1e-4), arch
        assert (arch == "llama") == bool(handles)  # Llama gets hooks; GPT-2 has its own dropout layers
        for handle in handles:
            handle.remove()


@pytest.mark.train
def test_early_stopping_snapshots_the_best_held_out_epoch(tiny_loaded) -> None:
    """At a learning rate that overfits six sentences, held-out loss rises after a while: each snapshot is the
    best epoch so far, and the record says which."""
    source = tiny_loaded["gpt2"]
    config = TrainingConfig(
        epochs=(1, 3, 8), learning_rate=3e-2, batch_size=2, defense=parse_training_defense("early_stopping:patience=2")
    )
    held = ["the miller sold flour to the baker in the town", "geese and foxes live by the lake over the hill"]
    model = copy.deepcopy(source.model)
    record: dict = {}
    saved = {}
    train_causal_lm(
        model,
        source.tokenizer,
        TEXTS,
        config=config,
        held_out=held,
        progress=False,
        record=record,
        on_epoch=keep_snapshots(saved),
    )
    stopping = record["early_stopping"]
    losses = stopping["held_out_losses"]
    for epoch, chosen in stopping["snapshot_from_epoch"].items():
        assert chosen == int(np.argmin(losses[: int(epoch) + 1])), (epoch, losses)
    assert set(saved) == {1, 3, 8}
    with pytest.raises(Exception, match="early stopping needs held-out text"):
        train_causal_lm(
            copy.deepcopy(source.model),
            source.tokenizer,
            TEXTS,
            config=config,
            progress=False,
            on_epoch=lambda *a: None,
        )


def test_an_undefended_config_keeps_its_identity() -> None:
    """Cached trained models are named by the config's identity: adding defenses must not rename theirs."""
    plain = TrainingConfig(epochs=(1, 2), learning_rate=5e-5)
    assert "defense" not in plain.to_dict()
    defended = TrainingConfig(epochs=(1, 2), learning_rate=5e-5, defense=parse_training_defense("dropout:p=0.1"))
    assert defended.to_dict()["defense"] == {"kind": "dropout", "p": 0.1}


def test_peak_memory_is_the_blocks_own() -> None:
    """A block that holds 200 MB for half a second reports a peak at least 150 MB above the resident size before it.
    Run in a fresh interpreter: in a long test process the allocator may reuse pages already resident, and the
    resident size then need not grow at all."""
    import subprocess
    import sys

    program = """
import time
from llm_mia.known_split.training_loop import PeakMemory
before = PeakMemory._rss()
with PeakMemory() as memory:
    block = b"x" * (200 * 2**20)
    time.sleep(0.5)
    del block
print(before, memory.peak)
"""
    before, peak = map(
        int, subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout.split()
    )
    assert peak - before >= 150 * 2**20


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_activation_checkpointing_gives_the_same_weights_and_is_switched_off_after(tiny_loaded, arch) -> None:
    """Recomputing the blocks in the backward pass must not move a bit of the trained weights (the fine-tune
    recipe turns it on to halve its memory, and its cache identity does not name it), and the model it hands back
    is a plain one."""
    source = tiny_loaded[arch]
    config = TrainingConfig(epochs=(1, 2), learning_rate=1e-2, batch_size=2, warmup_steps=1)
    snapshots = []
    for checkpointing in (False, True):
        model = copy.deepcopy(source.model)
        saved: dict = {}
        train_causal_lm(
            model,
            source.tokenizer,
            TEXTS,
            config=config,
            on_epoch=keep_snapshots(saved),
            progress=False,
            checkpoint_activations=checkpointing,
        )
        snapshots.append(saved)
        assert not model.is_activation_checkpointing
    plain, checkpointed = snapshots
    for epoch in (1, 2):
        assert all(torch.equal(plain[epoch][k], checkpointed[epoch][k]) for k in plain[epoch])
    assert any(not torch.equal(plain[2][k], source.model.state_dict()[k]) for k in plain[2])


@pytest.mark.train
def test_the_training_loop_resolves_auto_itself_and_refuses_a_gpu_it_cannot_see(tiny_loaded) -> None:
    """``--device auto`` is every command's default: the loop turns it into the device torch has (here the CPU:
    the same bits as asking for it), so no caller can hand torch a device name it does not know; a GPU that is not
    there is refused in words."""
    source = tiny_loaded["gpt2"]
    config = TrainingConfig(epochs=(1,), learning_rate=1e-2, batch_size=2)
    runs = []
    for device in ("cpu", "auto"):
        model, saved = copy.deepcopy(source.model), {}
        train_causal_lm(model, source.tokenizer, TEXTS, config=config, on_epoch=keep_snapshots(saved),
                        device=device, progress=False)  # fmt: skip
        runs.append(saved[1])
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    if not torch.cuda.is_available():
        with pytest.raises(LlmMiaError, match="no CUDA device"):
            train_causal_lm(copy.deepcopy(source.model), source.tokenizer, TEXTS, config=config,
                            on_epoch=lambda *_: None, device="cuda", progress=False)  # fmt: skip
