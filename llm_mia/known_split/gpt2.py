"""The pieces of a model trained from scratch: a byte-level BPE tokenizer trained on training text only
(:func:`train_tokenizer`) and a GPT-2 initialised from a seed for it (:func:`new_gpt2`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_mia.known_split.training_config import Gpt2Architecture


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
