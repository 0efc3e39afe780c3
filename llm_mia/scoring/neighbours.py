"""Neighbour texts for the neighbourhood attack (Mattern et al. 2023): texts one small edit away from a document.

Two generators, chosen by the scorer's ``generator`` hyperparameter:

- ``word-swap`` (the default; needs no model; a variant, not the published method): neighbour j swaps one pair
  of adjacent words, at a seeded choice of distinct positions (fewer neighbours when the text has fewer word
  pairs). It keeps every word and changes the order only locally, so a language model should find a neighbour
  a little less likely than the original, whatever it was trained on.
- a path to a local masked language model (``AutoModelForMaskedLM``; the published method): for every token
  position i of the masked model's tokenization, the input embedding at i alone goes through dropout
  (p = 0.7, the paper's trick in place of a [MASK] token, so the model still sees a noisy version of the
  original token), and the model's top 10 candidates at i other than the original token are kept with their
  probability; the ``n`` most probable single-token replacements over all positions are the neighbours.
  Dropout is seeded per text.

Neighbours depend on the text, ``n``, the generator and the seed only (never on other documents), and a run keeps
them in ``<cache>/neighbours/`` as JSONL (document, text SHA-256, neighbours), named in the run record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError
from llm_mia.io.identity import cache_dir, sha256_text

WORD_SWAP = "word-swap"
DROPOUT = 0.7
TOP_K = 10


def _seed(text: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{text}".encode()).digest()[:8], "little")


def word_swap_neighbours(text: str, n: int, *, seed: int = 0) -> list[str]:
    """Up to ``n`` neighbours, each with one pair of adjacent words swapped (module doc).

    >>> word_swap_neighbours("a b c", 5)
    ['b a c', 'a c b']
    """
    words = text.split()
    pairs = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
    if not pairs:
        return []
    rng = np.random.default_rng(_seed(text, seed))
    chosen = sorted(rng.choice(len(pairs), size=min(n, len(pairs)), replace=False).tolist())
    neighbours = []
    for index in chosen:
        i = pairs[index]
        swapped = [*words[:i], words[i + 1], words[i], *words[i + 2 :]]
        neighbours.append(" ".join(swapped))
    return neighbours


class MaskedModelNeighbours:
    """The published generator (module doc) over a local masked language model directory."""

    def __init__(self, path: str, *, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if not Path(path).is_dir():
            raise InputError(
                f"neighbour generator {path!r}: not a directory; give a local masked language model "
                f"(e.g. a saved roberta-base) or {WORD_SWAP!r}"
            )
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForMaskedLM.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device = device
        self._torch = torch

    def __call__(self, text: str, n: int, *, seed: int = 0) -> list[str]:
        torch = self._torch
        encoded = self.tokenizer(text, return_tensors="pt", truncation=True)
        ids = encoded["input_ids"].to(self.device)
        special = set(self.tokenizer.all_special_ids)
        embeddings = self.model.get_input_embeddings()(ids)
        generator = torch.Generator(device="cpu").manual_seed(_seed(text, seed) % 2**63)
        candidates: list[tuple[float, int, int]] = []
        with torch.no_grad():
            for position in range(ids.shape[1]):
                original = int(ids[0, position])
                if original in special:
                    continue
                keep = (torch.rand(embeddings.shape[-1], generator=generator) >= DROPOUT).to(embeddings.dtype)
                noisy = embeddings.clone()
                noisy[0, position] = embeddings[0, position] * keep.to(self.device) / (1 - DROPOUT)
                logits = self.model(inputs_embeds=noisy, attention_mask=encoded["attention_mask"].to(self.device))
                probabilities = torch.softmax(logits.logits[0, position].float(), dim=-1)
                top = torch.topk(probabilities, TOP_K + 1)
                for probability, token in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                    if token != original and token not in special:
                        candidates.append((probability, position, token))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        neighbours: list[str] = []
        for _, position, token in candidates:
            changed = ids[0].clone()
            changed[position] = token
            neighbour = self.tokenizer.decode(changed, skip_special_tokens=True)
            assert isinstance(neighbour, str)  # one sequence of ids decodes to one string
            if neighbour != text and neighbour not in neighbours:
                neighbours.append(neighbour)
            if len(neighbours) == n:
                break
        return neighbours


def make_generator(generator: str) -> Any:
    """A callable ``(text, n, seed=) -> neighbours`` for the ``generator`` hyperparameter."""
    if generator == WORD_SWAP:
        return word_swap_neighbours
    return MaskedModelNeighbours(generator)


def generate(
    ids: Sequence[str], texts: Sequence[str], *, n: int, generator: str, seed: int
) -> tuple[list[list[str]], Path]:
    """Neighbours of every text, and the JSONL file they were kept in."""
    if n < 1:
        raise InputError(f"neighbourhood: n must be at least 1, got {n}")
    make = make_generator(generator)
    neighbours = [make(text, n, seed=seed) for text in texts]
    identity = json.dumps([generator, n, seed, [sha256_text(t) for t in texts]])
    path = cache_dir() / "neighbours" / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": i, "text_sha256": sha256_text(t), "neighbours": nb}, ensure_ascii=False)
        for i, t, nb in zip(ids, texts, neighbours, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return neighbours, path
