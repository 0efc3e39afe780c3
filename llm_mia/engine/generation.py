"""Sampling continuations from a white-box model (SaMIA): the toolkit's one place that generates text.

Each prompt is sampled in its own generator state, seeded from the caller's seed, so a text's continuations do
not depend on the other texts of a run, and the global torch random state is left as it was.
"""

from __future__ import annotations

from llm_mia.backends.local import LoadedModel


def sample_continuations(
    prompt: str,
    loaded: LoadedModel,
    *,
    samples: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    top_k: int = 50,
    top_p: float = 1.0,
    repetition_penalty: float = 1.0,
    exact_length: bool = False,
    chat_template: bool = False,
) -> list[str]:
    """``samples`` continuations of ``prompt`` (new text only), sampled at ``temperature`` with ``top_k`` (and
    nucleus ``top_p``, ``repetition_penalty``). ``exact_length``: every continuation has exactly
    ``max_new_tokens`` tokens (end-of-text is not sampled before then).

    ``chat_template``: ``prompt`` is a user message, put through the tokenizer's chat template (an instruct
    model's own format, special tokens included) instead of being continued as plain text.
    """
    import torch

    tokenizer = loaded.tokenizer
    if chat_template:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=False
        )
        ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
    else:
        text_ids = tokenizer(prompt, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        ids = list(loaded.prefix_ids) + text_ids
    input_ids = torch.tensor([ids], device=loaded.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    devices = [loaded.device] if loaded.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(seed)
        output = loaded.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=True,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens if exact_length else None,
            num_return_sequences=samples,
            pad_token_id=pad,
        )
    return tokenizer.batch_decode(output[:, len(ids) :], skip_special_tokens=True)
