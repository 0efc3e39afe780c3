"""Tiny random causal language models and tokenizers for the test suite, built fully offline.

Nothing here touches a model hub: the tokenizer is a byte-level BPE trained with the ``tokenizers`` library on a
small built-in English corpus, and each model is constructed from its ``transformers`` config class with random
weights. Both are written with ``save_pretrained`` so tests can load them back through the ordinary
``AutoTokenizer`` / ``AutoModelForCausalLM`` paths (``local_files_only=True``).

Typical use in a test (``pythonpath`` in pyproject.toml puts ``tests/`` on ``sys.path``;
``from tests.tiny_models import ...`` works only under ``python -m pytest``)::

    from tiny_models import make_tiny_model

    def test_something(tmp_path):
        model_dir = make_tiny_model(tmp_path / "llama", "llama")
        ...

Notes for test authors (checked against transformers 5.24, torch 2.13 CPU):

* The byte-level tokenizer can encode any unicode text (no ``<unk>``); ids 0, 1, 2 are ``<bos>``, ``<eos>``,
  ``<pad>``. ``add_bos=True`` prepends ``<bos>`` (Llama/Gemma style); ``add_bos=False`` adds nothing (GPT-2 style).
  ``tokenizer.add_bos_token`` reads False either way (as for hub tokenizers loaded through the generic tokenizers
  backend in transformers 5); detect BOS insertion from an encoding, e.g. ``tokenizer("")["input_ids"]``.
* With right padding and an attention mask, every architecture gives the same logits at unpadded positions as
  running each sequence alone (to float32 round-off). With left padding the same holds for all but gpt2, whose
  position ids ignore the mask; pass ``position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0)`` there.
* ``model.get_output_embeddings()(model.base_model(...).last_hidden_state)`` equals ``model(...).logits`` for every
  architecture here. Gemma 3 is built with ``final_logit_softcapping=None`` (as in the released Gemma 3
  checkpoints); if a test sets it, the logits become ``c * tanh(lm_head(h) / c)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

ARCHITECTURES = ("gpt2", "gpt_neox", "opt", "llama", "gemma3")

BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"
PAD_TOKEN = "<pad>"
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)

# 256 byte-level symbols plus the three special tokens: the smallest vocabulary a byte-level BPE can have.
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)

# Architectures whose real tokenizers prepend a BOS token.
_BOS_BY_DEFAULT = frozenset({"llama", "gemma3"})

CORPUS = """\
The old lighthouse stood at the edge of the cliff for more than two hundred years. Every evening the keeper climbed
the narrow stairs, trimmed the wick, and watched the beam sweep across the grey water. Ships passing in the night
never saw him, but they trusted the light, and that was enough for him.

In the spring the village held a market in the square. Farmers brought eggs, cheese, and baskets of early
strawberries; a baker sold warm bread from the back of a cart. Children ran between the stalls while their parents
argued cheerfully about the price of onions and the chance of rain on Saturday.

Scientists measure the temperature of the ocean with floating instruments that drift for years. Each one sinks to a
depth of two thousand metres, rises slowly to the surface, and sends its readings to a satellite. The data show that
the upper layers of the sea have warmed steadily since the 1970s.

"Could you pass the salt, please?" asked Maria. Her brother handed it over without looking up from his book, which
was about the history of bridges. He had read the chapter on Roman arches three times already and still found it
fascinating; she thought it was the dullest thing in the world.

To make a simple tomato sauce, warm two spoons of olive oil in a pan, add a chopped onion, and cook it gently until
soft. Stir in a tin of tomatoes, a pinch of sugar, and some salt. Let it simmer for twenty minutes, then taste it and
add fresh basil just before serving.

The committee met on Tuesday at 9:30 to review the budget. After a long discussion, members agreed to spend 40% of
the remaining funds on new computers and the rest on repairs to the library roof. The decision will be announced in
the next newsletter, along with a schedule for the work.
"""


def make_tokenizer(
    directory: Path,
    *,
    vocab_size: int = 300,
    add_bos: bool = False,
    seed_text: str | None = None,
) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE tokenizer, save it to ``directory`` and return it.

    The special tokens ``<bos>``, ``<eos>``, ``<pad>`` get ids 0, 1, 2. With ``add_bos=True`` every encoding starts
    with ``<bos>``; with ``add_bos=False`` nothing is added. The trainer is deterministic, so the same arguments give
    the same vocabulary every time.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB_SIZE} for a byte-level BPE, got {vocab_size}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    text = CORPUS if seed_text is None else seed_text
    backend.train_from_iterator([line for line in text.splitlines() if line.strip()] or [text], trainer=trainer)
    # The post-processor in tokenizer.json is what decides BOS insertion, before and after a reload. add_bos_token
    # is deliberately not passed: transformers 5 drops it from tokenizer_config.json on save and ignores it on load
    # when tokenizer.json exists, so the attribute would read True here but False after reloading.
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single=f"{BOS_TOKEN}:0 $A:0",
            pair=f"{BOS_TOKEN}:0 $A:0 {BOS_TOKEN}:1 $B:1",
            special_tokens=[(BOS_TOKEN, backend.token_to_id(BOS_TOKEN))],
        )
    else:
        backend.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1")

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="right",
        model_max_length=1_000_000,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(directory)
    return tokenizer


def _build_model(
    arch: str, vocab_size: int, max_positions: int, bos_id: int, eos_id: int, pad_id: int
) -> PreTrainedModel:
    ids = {"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id}
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=max_positions,
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_inner=64,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        )
        model_cls: type[PreTrainedModel] = GPT2LMHeadModel
    elif arch == "gpt_neox":
        config = GPTNeoXConfig(
            vocab_size=vocab_size,
            max_position_embeddings=max_positions,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            hidden_dropout=0.0,
            attention_dropout=0.0,
            **ids,
        )
        model_cls = GPTNeoXForCausalLM
    elif arch == "opt":
        config = OPTConfig(
            vocab_size=vocab_size,
            max_position_embeddings=max_positions,
            hidden_size=32,
            word_embed_proj_dim=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            layerdrop=0.0,
            **ids,
        )
        model_cls = OPTForCausalLM
    elif arch == "llama":
        config = LlamaConfig(
            vocab_size=vocab_size,
            max_position_embeddings=max_positions,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            **ids,
        )
        model_cls = LlamaForCausalLM
    elif arch == "gemma3":
        head_dim = 8
        config = Gemma3TextConfig(
            vocab_size=vocab_size,
            max_position_embeddings=max_positions,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=head_dim,
            query_pre_attn_scalar=head_dim,
            # One sliding-window layer and one global layer, with a window short enough to matter in tests.
            layer_types=["sliding_attention", "full_attention"],
            sliding_window=min(16, max_positions),
            final_logit_softcapping=None,
            attn_logit_softcapping=None,
            **ids,
        )
        model_cls = Gemma3ForCausalLM
    else:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    config.dtype = torch.float32
    # Eager attention runs everywhere (Gemma's recommended choice); sdpa, the default on reload, also works on CPU.
    return model_cls._from_config(config, attn_implementation="eager", dtype=torch.float32)


def make_tiny_model(
    directory: Path,
    arch: str = "llama",
    *,
    vocab_size: int = 300,
    add_bos: bool | None = None,
    max_positions: int = 64,
    seed: int = 0,
) -> Path:
    """Build a tiny random causal LM of architecture ``arch`` plus its tokenizer, save both to ``directory``.

    ``add_bos`` defaults to True for llama and gemma3 and False otherwise. The model has 2 layers, hidden size 32,
    context ``max_positions``, a vocabulary of ``len(tokenizer)``, and is float32 in eval mode. ``seed`` fixes the
    weights. Returns ``directory``.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if add_bos is None:
        add_bos = arch in _BOS_BY_DEFAULT
    tokenizer = make_tokenizer(directory, vocab_size=vocab_size, add_bos=add_bos)

    torch.manual_seed(seed)
    model = _build_model(
        arch,
        vocab_size=len(tokenizer),
        max_positions=max_positions,
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
    )
    model.to(torch.float32).eval()
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    return directory
