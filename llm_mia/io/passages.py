"""Cut works into passages of exactly the same number of tokens, each traceable to the text it came from.

A dataset-level test (``llm_mia.stats.dataset_inference``) compares passages of a suspect work with passages of
control works. They must be formed the same way whatever files they came in: a work given as one long file
and controls given as short documents must not end up as long passages against short ones, or every
length-sensitive score separates them with no membership at all. So every passage on both sides has exactly
``N`` tokens (the target model's tokenizer, no special tokens):

    passage i of a source of T tokens = tokens [i * S, i * S + N) for every i with i * S + N <= T

with stride S (default S = N: consecutive, non-overlapping passages). The tokens after the last full passage
(fewer than S, or the whole source when T < N) are not used; how many is counted per side and reported, never
silently dropped. A source shorter than N tokens gives no passage: lower ``--passage-tokens`` when the
controls are short documents. With S < N neighbouring passages overlap by N - S tokens and are not
independent; prefer S = N.

Every passage records its ``source`` (file path relative to the input, or document id), its ``work`` (the unit
of inference: see :func:`read_sources`) and the character offsets of its text in the source, so
``source_text[passage.char_start:passage.char_end] == passage.text`` always holds and every number in a report
can be traced back to the words it was computed on. Token spans map to characters through the tokenizer's
offsets: token j starts at character b_j (the running maximum of the offsets' starts, with b_0 = 0 and
b_T = len(text)), and passage [s, e) is text[b_s:b_e].

Inputs (:func:`read_sources`): anything ``llm_mia.io.documents.read_documents`` reads. A text file (``.txt``,
``.md``, ``.rst``, no extension) is one source, named by its file name; a directory gives one source per text
file (named by relative path); a document file (``.jsonl``, ``.json``, ``.csv``, ``.parquet``) one source per
document, named by its id. Markdown is read as written, markup included. Files are decoded as UTF-8 without
newline translation, so offsets are code-point offsets into the file's exact text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from llm_mia.errors import InputError, LlmMiaError, unknown_name
from llm_mia.io.documents import Document, read_documents

logger = logging.getLogger(__name__)

DEFAULT_PASSAGE_TOKENS = 128


WORK_UNITS = ("one", "sources", "group")


@dataclass(frozen=True)
class Source:
    """One piece of text: a file's whole text, or one document of a document file, and the work it belongs to."""

    name: str  # path relative to the input (posix form), the file name, or the document id
    text: str
    work: str = ""  # the unit of inference this source belongs to (default: the source itself)

    @property
    def work_id(self) -> str:
        return self.work or self.name


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
    work: str = ""  # the work the source belongs to (``Source.work_id``)

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
            "work": self.work,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "token_start": self.token_start,
            "token_end": self.token_end,
        }


def read_sources(path: str | Path, *, works: str = "sources", name: str = "") -> list[Source]:
    """Read texts with :func:`llm_mia.io.documents.read_documents`, one source per text file or per document, and
    say which work each belongs to.

    ``works``: ``one`` (everything at ``path`` is one work, e.g. the chapters of one book), ``sources`` (each
    file or document is a work of its own, e.g. articles by different authors) or ``group`` (the ``group``
    column of a document file names the work; rows without one are works of their own). ``name`` names the
    single work for ``one`` (default: the path's name).
    """
    if works not in WORK_UNITS:
        raise unknown_name("work unit", works, WORK_UNITS)
    documents = read_documents(path)
    if works == "group" and not any(document.group for document in documents):
        raise InputError(
            f"{path}: no document has a group, so --works group cannot say which work each belongs to; add a "
            f"'group' column naming the work, or use 'one' (all one work) or 'sources' (each document a work)"
        )
    whole = name or Path(path).name
    return [
        Source(
            name=document.id,
            text=document.text,
            work=whole if works == "one" else (document.group or document.id) if works == "group" else document.id,
        )
        for document in documents
    ]


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
    """Token spans ``(start, end)`` of the passages of a source of ``n_tokens`` tokens: every passage exactly
    ``passage_tokens`` long, starts ``stride`` apart, the tail that does not fill a passage unused.

    >>> plan_passages(130, passage_tokens=64)
    [(0, 64), (64, 128)]
    >>> plan_passages(10, passage_tokens=4, stride=2)
    [(0, 4), (2, 6), (4, 8), (6, 10)]
    >>> plan_passages(50, passage_tokens=64)
    []
    """
    stride = check_passage_settings(passage_tokens=passage_tokens, stride=stride)
    return [(start, start + passage_tokens) for start in range(0, n_tokens - passage_tokens + 1, stride)]


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
    source: Source,
    *,
    tokenizer: Any,
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
    stride: int | None = None,
    boundaries: np.ndarray | None = None,
) -> list[Passage]:
    """Cut one source into passages (module docstring); ids are ``<source>#<index>``. ``boundaries``: the
    source's :func:`token_boundaries`, when already computed."""
    if boundaries is None:
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
                work=source.work_id,
            )
        )
    return passages


def _by_source(passages: Sequence[Passage]) -> list[list[Passage]]:
    groups: dict[str, list[Passage]] = {}
    for passage in passages:
        groups.setdefault(passage.source, []).append(passage)
    return list(groups.values())


class CuttingRecord(TypedDict):
    """What cutting did to one side, in ``report.json`` (:class:`Cutting`)."""

    sources: int
    tokens: int
    tokens_in_passages: int
    tokens_unused: int
    sources_too_short: int


@dataclass(frozen=True)
class Cutting:
    """What cutting did to one side: tokens in its sources, tokens in passages, sources too short for one."""

    sources: int
    tokens: int
    tokens_in_passages: int
    too_short: tuple[str, ...]  # sources with fewer tokens than one passage

    def to_dict(self) -> CuttingRecord:
        return {
            "sources": self.sources,
            "tokens": self.tokens,
            "tokens_in_passages": self.tokens_in_passages,
            "tokens_unused": self.tokens - min(self.tokens, self.tokens_in_passages),
            "sources_too_short": len(self.too_short),
        }


def passages_from_sources(
    sources: Sequence[Source],
    *,
    tokenizer: Any,
    passage_tokens: int = DEFAULT_PASSAGE_TOKENS,
    stride: int | None = None,
) -> tuple[list[Passage], Cutting]:
    """Passages of every source, in source order, and what the cutting left unused."""
    stride = check_passage_settings(passage_tokens=passage_tokens, stride=stride)
    if stride < passage_tokens:
        logger.warning(
            "passage stride %d < passage length %d: neighbouring passages overlap and are not independent",
            stride,
            passage_tokens,
        )
    passages: list[Passage] = []
    tokens, too_short = 0, []
    for source in sources:
        boundaries = token_boundaries(tokenizer, source.text)
        cut = cut_passages(
            source, tokenizer=tokenizer, passage_tokens=passage_tokens, stride=stride, boundaries=boundaries
        )
        tokens += len(boundaries) - 1
        if not cut:
            too_short.append(source.name)
        passages.extend(cut)
    used = sum(len({t for p in group for t in range(p.token_start, p.token_end)}) for group in _by_source(passages))
    return passages, Cutting(len(sources), tokens, used, tuple(too_short))
