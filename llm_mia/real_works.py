"""Works of real text for measuring the dataset-level test where it can fail: a suspect work and control works
that are each distinctive (separate articles, separate packages' histories), drawn so that the suspect is either
exchangeable with the controls or differs from them in era, sub-genre or format.

A design draws one suspect work and ``controls`` control works, each a name and its texts (one text, or several
articles of a collection; each text at most ``max_words`` words: its start; a test cuts every text into passages
separately, as ``llm-mia dataset-test`` does with a ``group`` column). Used by ``benchmarks/difference_check.py``,
``benchmarks/false_positives.py`` (``--parts real``) and the tests of the model-free checks.

==========================  =========================================================================================
design                      suspect work / control works
==========================  =========================================================================================
exchangeable-wikipedia      one of ``controls`` + 1 collections of 4 random Wikipedia lead paragraphs
exchangeable-changelogs     one of ``controls`` + 1 random installed packages' Debian changelogs (recent entries)
era-wikimia                 8 WikiMIA articles about events before 2017 / groups of 8 about events of 2023 and later
era-wikimia-single          one WikiMIA article (128 words) before 2017 / single articles of 2023 and later
era-changelogs              a package's Debian changelog entries up to 2012 / other packages' entries from 2023 on
sub-genre                   an upstream project's NEWS or ChangeLog / Debian changelogs
format                      a manual page's troff source / Debian changelogs
==========================  =========================================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from llm_mia.errors import LlmMiaError

DESIGNS = (
    "exchangeable-wikipedia",
    "exchangeable-changelogs",
    "era-wikimia",
    "era-wikimia-single",
    "era-changelogs",
    "sub-genre",
    "format",
)
EXCHANGEABLE = ("exchangeable-wikipedia", "exchangeable-changelogs")
MIN_WORDS = 150  # works shorter than this are not drawn
OLD_YEAR, NEW_YEAR = 2012, 2023
WIKIMIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia"


Work = tuple[str, tuple[str, ...]]  # a work's name and its texts


@dataclass(frozen=True)
class WorksDraw:
    """One draw of a design: the suspect work and the control works, each (name, texts)."""

    design: str
    suspect: Work
    controls: tuple[Work, ...]


def _distinct(works: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Works whose starts differ (binary packages built from one source ship the same changelog, and two that
    share their recent entries would be one text once cut to their start): the first name of each is kept."""
    seen: set[str] = set()
    kept = []
    for name, text in works:
        key = " ".join(text.split()[:MIN_WORDS])
        if key not in seen:
            seen.add(key)
            kept.append((name, text))
    return tuple(kept)


def _start(text: str, max_words: int) -> str:
    """The first ``max_words`` words of ``text``, keeping its line breaks (the format is part of the text)."""
    count, lines = 0, []
    for line in text.splitlines():
        words = line.split()
        if count + len(words) > max_words:
            lines.append(" ".join(words[: max_words - count]))
            break
        lines.append(line)
        count += len(words)
    return "\n".join(lines).strip()


@cache
def _wikipedia() -> tuple[tuple[str, str], ...]:
    from llm_mia.corpora import wikipedia_summaries

    return tuple((t, x) for t, x in wikipedia_summaries().items() if len(x.split()) >= MIN_WORDS // 2)


@cache
def _changelogs(era: str) -> tuple[tuple[str, str], ...]:
    from llm_mia.corpora import debian_changelog_entries

    chosen = []
    for package, entries in debian_changelog_entries().items():
        keep = [text for year, text in entries if (year <= OLD_YEAR if era == "old" else year >= NEW_YEAR)]
        if era == "any":
            keep = [text for _, text in entries]
        text = "\n\n".join(keep)
        if len(text.split()) >= MIN_WORDS:
            chosen.append((package, text))
    return _distinct(chosen)


@cache
def _upstream() -> tuple[tuple[str, str], ...]:
    from llm_mia.corpora import upstream_changelogs

    return _distinct([(n, t) for n, t in upstream_changelogs().items() if len(t.split()) >= MIN_WORDS])


@cache
def _man_pages() -> tuple[tuple[str, str], ...]:
    from llm_mia.corpora import man_page_sources

    return _distinct([(n, t) for n, t in man_page_sources().items() if len(t.split()) >= MIN_WORDS])


@cache
def _wikimia(length: int) -> dict[int, tuple[str, ...]]:
    path = WIKIMIA / f"{length}.jsonl"
    if not path.is_file():
        raise LlmMiaError(
            f"{path}: WikiMIA's {length}-word file is missing (the shared data folder beside the project)"
        )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {label: tuple(r["input"] for r in rows if r["label"] == label) for label in (0, 1)}


def _sample(
    pool: tuple[tuple[str, str], ...], count: int, rng: np.random.Generator, what: str
) -> list[tuple[str, str]]:
    if len(pool) < count:
        raise LlmMiaError(f"{what}: {len(pool)} works on this machine, the design needs {count}")
    return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]


def draw_works(
    design: str,
    rng: np.random.Generator,
    *,
    controls: int = 30,
    max_words: int = 1500,
    exclude: frozenset[str] = frozenset(),
) -> WorksDraw:
    """One draw of ``design`` (module docstring). ``exclude``: names (Wikipedia titles) never drawn, e.g. the texts
    a benchmark model was trained on."""
    if design not in DESIGNS:
        raise LlmMiaError(f"design {design!r}: choose one of {', '.join(DESIGNS)}")
    if design == "exchangeable-wikipedia":
        group = 4
        articles = _sample(tuple(w for w in _wikipedia() if w[0] not in exclude), group * (controls + 1), rng, design)
        works = [
            (f"articles {articles[i * group][0]} ...", tuple(text for _, text in articles[i * group : (i + 1) * group]))
            for i in range(controls + 1)
        ]
        suspect, others = works[0], works[1:]
    elif design == "exchangeable-changelogs":
        works = [(name, (text,)) for name, text in _sample(_changelogs("new"), controls + 1, rng, design)]
        suspect, others = works[0], works[1:]
    elif design == "era-wikimia":
        group = 8
        texts = _wikimia(64)
        old = tuple(texts[1][i] for i in rng.choice(len(texts[1]), size=group, replace=False))
        new = [texts[0][i] for i in rng.choice(len(texts[0]), size=group * controls, replace=False)]
        suspect = ("before 2017", old)
        others = [(f"2023+ group {i}", tuple(new[i * group : (i + 1) * group])) for i in range(controls)]
    elif design == "era-wikimia-single":
        texts = _wikimia(128)
        suspect = ("before 2017", (texts[1][int(rng.integers(len(texts[1])))],))
        chosen = rng.choice(len(texts[0]), size=controls, replace=False)
        others = [(f"2023+ article {i}", (texts[0][i],)) for i in chosen]
    elif design == "era-changelogs":
        picked = _sample(_changelogs("new"), controls, rng, design)
        others = [(name, (text,)) for name, text in picked]
        taken = {name for name, _ in picked}
        name, text = _sample(tuple(w for w in _changelogs("old") if w[0] not in taken), 1, rng, design)[0]
        suspect = (f"{name} (to {OLD_YEAR})", (text,))
    else:
        others = [(name, (text,)) for name, text in _sample(_changelogs("new"), controls, rng, design)]
        name, text = _sample(_upstream() if design == "sub-genre" else _man_pages(), 1, rng, design)[0]
        suspect = (name, (text,))
    return WorksDraw(
        design,
        (suspect[0], tuple(_start(t, max_words) for t in suspect[1])),
        tuple((name, tuple(_start(t, max_words) for t in texts)) for name, texts in others),
    )


def word_passages(text: str, words: int) -> list[str]:
    """Consecutive passages of exactly ``words`` whitespace-separated words (a tail shorter than that is dropped);
    line breaks inside a passage are kept.

    >>> word_passages("a b\\nc d e", 2)
    ['a b', 'c d']
    """
    tokens: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if parts and tokens:
            tokens[-1] += "\n"
        tokens.extend(parts)
    passages = [tokens[i : i + words] for i in range(0, len(tokens) - words + 1, words)]
    return [" ".join(p).replace("\n ", "\n").strip() for p in passages]
