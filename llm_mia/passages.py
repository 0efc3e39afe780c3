"""Cut long works into passages of a fixed number of tokens, each traceable to the exact text it came from.

A dataset-level test (``llm_mia.dataset_inference``) scores many passages of one work. Every passage records its
``source`` (file path relative to the input, or document id) and the character offsets of its text in that
source, so ``source_text[passage.char_start:passage.char_end] == passage.text`` always holds and every number
in a report can be traced back to the words it was computed on.

Inputs (:func:`read_sources`): anything ``llm_mia.documents.read_documents`` reads. A text file (``.txt``,
``.md``, ``.rst``, no extension) is one source, named by its file name; a directory gives one source per text
file (named by relative path); a document file (``.jsonl``, ``.json``, ``.csv``, ``.parquet``) one source per
document, named by its id. Markdown is read as written, markup included, since that is how web crawls
usually hold it. Files are decoded as UTF-8 without newline translation, so offsets are code-point offsets
into the file's exact text (``\\r\\n`` stays two characters).

How a source of T tokens (the target model's tokenizer, no special tokens) becomes passages, for a passage
length N and a stride S <= N (:func:`plan_passages`):

    n = 1 if T <= N else ceil((T - N) / S) + 1              passages
    L = ceil((T + (n - 1) * (N - S)) / n)  (<= N)            tokens per passage
    start_i = round(i * (T - L) / (n - 1)),  end_i = start_i + L

The first passage starts at token 0 and the last ends at token T, starts are at most S apart, so the whole
work is covered and nothing is dropped or truncated; no passage exceeds N tokens and there is no short tail
fragment (a 130-token source with N = 128 gives two passages of 65 tokens, not 128 + 2). With S = N (the
default) neighbouring passages overlap by at most one token. With S < N they overlap by about N - S tokens:
overlapping passages are not independent, which makes a t-test over them over-confident; prefer S = N for
dataset-level tests. A source shorter than N tokens is one shorter passage (recorded in ``n_tokens``).

Token spans map to characters through the tokenizer's offsets: token j starts at character b_j (the running
maximum of the offsets' starts, with b_0 = 0 and b_T = len(text)), and passage [s, e) is text[b_s:b_e]. Text
between tokens (e.g. whitespace a tokenizer trims from its offsets) thus belongs to the passage before it,
and with S = N the passages' texts concatenate back to the whole source.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.documents import Document, read_documents
from llm_mia.errors import LlmMiaError

logger = logging.getLogger(__name__)

DEFAULT_PASSAGE_TOKENS = 128


@dataclass(frozen=True)
class Source:
    """One piece of a work: a file's whole text, or one document of a document file."""

    name: str  # path relative to the input (posix form), the file name, or the document id
    text: str


@dataclass(frozen=True)
class Passage:
    """A span of a source: ``source_text[char_start:char_end] == text``; tokens ``[token_start, token_end)``.

    Token positions count the source's own tokenization (target model's tokenizer, no special tokens).
    Scored on its own, the passage may tokenize to a token or two more or fewer at its edges.
    """

    id: str
    source: str
    text: str
    char_start: int
    char_end: int
    token_start: int
    token_end: int

    @property
    def n_tokens(self) -> int:
        return self.token_end - self.token_start

    def to_document(self, *, label: int | None = None, group: str | None = None, prefix: str = "") -> Document:
        """This passage as a :class:`Document` with id ``prefix + self.id`` (prefixes keep two works' ids apart)."""
        return Document(id=f"{prefix}{self.id}", text=self.text, label=label, group=group)

    def record(self) -> dict[str, Any]:
        """Where the passage comes from, for reports (no text: the offsets locate it in the source)."""
        return {
            "id": self.id,
            "source": self.source,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "token_start": self.token_start,
            "token_end": self.token_end,
        }


def read_sources(path: str | Path) -> list[Source]:
    """Read a work with :func:`llm_mia.documents.read_documents`: one source per text file or per document.

    Raises InputError for a missing path, an unsupported format or a directory without text files.
    """
    return [Source(name=document.id, text=document.text) for document in read_documents(path)]


def check_passage_settings(*, passage_tokens: int, stride: int | None) -> int:
    """Validate the passage length and stride; returns the stride to use (default: ``passage_tokens``)."""
    if passage_tokens < 1:
        raise LlmMiaError(f"passage length must be >= 1 token, got {passage_tokens}; try --passage-tokens 128")
    stride = passage_tokens if stride is None else stride
    if not 1 <= stride <= passage_tokens:
        raise LlmMiaError(
            f"passage stride {stride} is not in 1..{passage_tokens} (the passage length): a stride longer than "
            f"a passage would skip text between passages; omit it to use the passage length"
        )
    return stride


def plan_passages(n_tokens: int, *, passage_tokens: int, stride: int | None = None) -> list[tuple[int, int]]:
    """Token spans ``(start, end)`` of the passages of a source of ``n_tokens`` tokens (module docstring).

    >>> plan_passages(130, passage_tokens=128)
    [(0, 65), (65, 130)]
    >>> plan_passages(10, passage_tokens=4, stride=2)
    [(0, 4), (2, 6), (4, 8), (6, 10)]
    """
    stride = check_passage_settings(passage_tokens=passage_tokens, stride=stride)
    if n_tokens <= 0:
        return []
    if n_tokens <= passage_tokens:
        return [(0, n_tokens)]
    count = math.ceil((n_tokens - passage_tokens) / stride) + 1
    length = math.ceil((n_tokens + (count - 1) * (passage_tokens - stride)) / count)
    spacing = (n_tokens - length) / (count - 1)
    starts = [round(i * spacing) for i in range(count)]
    return [(start, start + length) for start in starts]


def token_boundaries(tokenizer: Any, text: str) -> np.ndarray:
    """Character position where each token starts, plus ``len(text)``: shape (T + 1,), non-decreasing.

    Uses the fast tokenizer's offsets with the same settings as the extraction engine (no special tokens
    added, special-token strings in the text split as ordinary text).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise LlmMiaError(
            f"cutting passages needs character offsets, which {type(tokenizer).__name__} (a slow tokenizer) "
            f"does not give; use a model directory with a tokenizer.json (a fast tokenizer)"
        )
    encoded = tokenizer(
        text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True, verbose=False
    )
    offsets = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)  # (T, 2)
    if len(offsets) == 0:
        return np.array([len(text)], dtype=np.int64)
    starts = np.maximum.accumulate(offsets[:, 0])  # (T,)
    starts[0] = 0  # text before the first token (e.g. trimmed whitespace) belongs to the first passage
    return np.append(starts, len(text))  # (T + 1,)


def cut_passages(
    source: Source, *, tokenizer: Any, passage_tokens: int = DEFAULT_PASSAGE_TOKENS, stride: int | None = None
) -> list[Passage]:
    """Cut one source into passages (module docstring); ids are ``<source>#<index>``."""
    boundaries = token_boundaries(tokenizer, source.text)
    spans = plan_passages(len(boundaries) - 1, passage_tokens=passage_tokens, stride=stride)
    passages = []
    for index, (start, end) in enumerate(spans):
        char_start, char_end = int(boundaries[start]), int(boundaries[end])
        if char_end <= char_start:
            raise LlmMiaError(
                f"{source.name}: tokens {start}..{end} map to no characters ({char_start}..{char_end}); the "
                f"passage falls inside one character's bytes; use a longer --passage-tokens"
            )
        passages.append(
            Passage(
                id=f"{source.name}#{index}",
                source=source.name,
                text=source.text[char_start:char_end],
                char_start=char_start,
                char_end=char_end,
                token_start=start,
                token_end=end,
            )
        )
    return passages


def passages_from_sources(
    sources: Sequence[Source],
    *,
    tokenizer: Any,
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
    stride: int | None = None,
) -> list[Passage]:
    """Passages of every source, in source order. Sources without any token give none (logged)."""
    stride = check_passage_settings(passage_tokens=passage_tokens, stride=stride)
    if stride < passage_tokens:
        logger.warning(
            "passage stride %d < passage length %d: neighbouring passages overlap and are not independent, "
            "which makes a t-test over them over-confident",
            stride,
            passage_tokens,
        )
    passages: list[Passage] = []
    for source in sources:
        cut = cut_passages(source, tokenizer=tokenizer, passage_tokens=passage_tokens, stride=stride)
        if not cut:
            logger.warning("%s: no tokens, so no passages", source.name)
        passages.extend(cut)
    return passages


def passages_from_path(
    path: str | Path,
    *,
    tokenizer: Any,
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
    stride: int | None = None,
) -> list[Passage]:
    """Read a work (:func:`read_sources`) and cut it into passages with the target model's tokenizer."""
    return passages_from_sources(read_sources(path), tokenizer=tokenizer, passage_tokens=passage_tokens, stride=stride)
