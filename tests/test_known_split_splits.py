"""Split builder: cleaning, deduplication of planted duplicates, seeded disjoint draws, manifest and cache."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from pathlib import Path

import pytest

from llm_mia.errors import InputError
from llm_mia.io.documents import Document
from llm_mia.known_split.splits import (
    SPLITS,
    SplitConfig,
    _chunk_blocks,
    build_split,
    clean_text,
    debian_changelog_documents,
    deduplicate,
    draw_split,
    load_split,
    python_docs_documents,
)

WORDS = tuple(f"word{i}" for i in range(50))


def random_documents(n: int, *, words: int = 100, seed: int = 0) -> list[Document]:
    """n documents of random words: any two share a 13-gram with negligible probability."""
    rng = random.Random(seed)
    return [Document(id=f"doc{i:03d}", text=" ".join(rng.choice(WORDS) for _ in range(words))) for i in range(n)]


# ------------------------------------------------------------------------------------------------ cleaning


def test_clean_text_normalises_unicode_controls_and_whitespace() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute accent -> NFC "Café"
    raw = f"\ufeff  {decomposed}\u200b  menu:\r\n\r\n\r\n\r\n    code  here   \x07\n\tindented"
    assert clean_text(raw) == "Café menu:\n\n    code here\n\tindented"


def test_clean_text_keeps_leading_indentation_and_single_blank_lines() -> None:
    text = "def f():\n    return  1\n\nnext paragraph"
    assert clean_text(text) == "def f():\n    return 1\n\nnext paragraph"


# ------------------------------------------------------------------------------------------------ dedup


def test_deduplicate_removes_planted_exact_and_near_duplicates() -> None:
    originals = random_documents(20)
    source = originals[3].text.split()
    exact_copy = Document("zz-exact", "  " + " ".join(source).upper().replace(" ", " ,  ") + "!")
    near = list(originals[7].text.split())
    near[40], near[80] = "substituted", "words"  # 2 of 100 words changed: most 13-grams survive
    near_copy = Document("zz-near", " ".join(near))
    shared_span = " ".join(originals[11].text.split()[:20])  # 8 of 88 13-grams shared: not a duplicate
    partial = Document(
        "zz-partial", shared_span + " " + " ".join(random_documents(1, words=80, seed=99)[0].text.split())
    )
    kept, removed = deduplicate([*originals, exact_copy, near_copy, partial], ngram=13, max_overlap=0.5)
    assert [d.id for d in kept] == [d.id for d in originals] + ["zz-partial"]
    found = {r.id: r for r in removed}
    assert set(found) == {"zz-exact", "zz-near"}
    assert (found["zz-exact"].kind, found["zz-exact"].duplicate_of) == ("exact", originals[3].id)
    assert (found["zz-near"].kind, found["zz-near"].duplicate_of) == ("near", originals[7].id)
    # 100 words -> 88 13-grams; two substitutions 40 words apart destroy 2 x 13 of them
    assert found["zz-near"].overlap == pytest.approx((88 - 26) / 88)


def test_deduplicate_keeps_the_first_occurrence_in_the_given_order() -> None:
    first, second = Document("b", "the same words here"), Document("a", "The same words, here.")
    kept, removed = deduplicate([first, second])
    assert [d.id for d in kept] == ["b"]
    assert removed[0].id == "a"


def test_deduplicate_rejects_bad_settings() -> None:
    with pytest.raises(InputError, match="ngram"):
        deduplicate([], ngram=0)
    with pytest.raises(InputError, match="max_overlap"):
        deduplicate([], max_overlap=0)


# ------------------------------------------------------------------------------------------------ draws


def test_draw_split_is_seeded_reproducible_and_independent_of_input_order() -> None:
    pool = random_documents(60, words=20)
    sizes = {"members": 10, "nonmembers": 10, "calibration": 5, "reference": 7, "tokenizer": 3}
    first = draw_split(pool, seed=3, **sizes)
    shuffled = list(pool)
    random.Random(1).shuffle(shuffled)
    again = draw_split(shuffled, seed=3, **sizes)
    other = draw_split(pool, seed=4, **sizes)
    ids = {name: [d.id for d in part] for name, part in first.items()}
    assert ids == {name: [d.id for d in part] for name, part in again.items()}
    assert ids["member"] != [d.id for d in other["member"]]


def test_draw_split_gives_disjoint_splits_of_the_asked_sizes_with_labels() -> None:
    pool = random_documents(50, words=20)
    parts = draw_split(pool, members=12, nonmembers=11, calibration=9, reference=8, tokenizer=10, seed=0)
    assert {name: len(part) for name, part in parts.items()} == {
        "member": 12,
        "nonmember": 11,
        "calibration": 9,
        "reference": 8,
        "tokenizer": 10,
    }
    all_ids = [d.id for part in parts.values() for d in part]
    assert len(all_ids) == len(set(all_ids)) == 50
    assert {d.label for d in parts["member"]} == {1}
    assert {d.label for d in parts["nonmember"]} == {0}
    assert {d.label for name in ("calibration", "reference", "tokenizer") for d in parts[name]} == {None}
    texts = {d.id: d.text for d in pool}
    assert all(texts[d.id] == d.text for part in parts.values() for d in part)


def test_draw_split_refuses_a_pool_too_small_or_with_duplicate_ids() -> None:
    with pytest.raises(InputError, match="needs 21 documents"):
        draw_split(random_documents(20, words=5), members=10, nonmembers=11)
    with pytest.raises(InputError, match="unique"):
        draw_split([Document("x", "a"), Document("x", "b")], members=1, nonmembers=1)


# ------------------------------------------------------------------------------------------------ corpora


def test_chunk_blocks_packs_blocks_and_cuts_long_ones_at_lines() -> None:
    short = ["one two three", "four five", "six seven eight nine", "ten"]
    assert _chunk_blocks(short, chunk_words=5) == ["one two three\n\nfour five", "six seven eight nine\n\nten"]
    long_block = "\n".join(f"w{i} x{i}" for i in range(12))  # 24 words in 12 lines, > 2 x 5 words
    passages = _chunk_blocks([long_block], chunk_words=5)
    assert "\n\n".join(passages).replace("\n\n", "\n") == long_block  # nothing lost, nothing cut inside a line
    assert all(len(p.split()) <= 12 for p in passages)


def test_python_docs_reader_cuts_files_into_passages(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(5)]
    (tmp_path / "library" / "x.rst.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    documents = python_docs_documents(root=tmp_path, chunk_words=60)
    assert [d.id for d in documents] == ["library/x.rst.txt#0", "library/x.rst.txt#1", "library/x.rst.txt#2"]
    assert {d.group for d in documents} == {"library/x.rst.txt"}
    assert documents[0].text.startswith("Paragraph 0") and "Paragraph 1" in documents[0].text


def test_debian_changelog_reader_keeps_entries_of_the_asked_years(tmp_path: Path) -> None:
    changelog = (
        "demo (2.0-1) unstable; urgency=medium\n\n"
        "  * New upstream release with a fix for the parser.\n\n"
        " -- Jane Doe <jane@example.org>  Mon, 03 Feb 2025 10:00:00 +0100\n\n"
        "demo (1.0-1) unstable; urgency=low\n\n"
        "  * Initial release.\n\n"
        " -- Jane Doe <jane@example.org>  Tue, 01 Mar 2022 10:00:00 +0100\n"
    )
    (tmp_path / "demo").mkdir()
    with gzip.open(tmp_path / "demo" / "changelog.Debian.gz", "wt", encoding="utf-8") as handle:
        handle.write(changelog)
    documents = debian_changelog_documents(years=("2025",), root=tmp_path)
    assert [d.id for d in documents] == ["demo/2.0-1"]
    assert documents[0].text.startswith("demo (2.0-1) unstable; urgency=medium")
    assert "New upstream release" in documents[0].text
    assert "jane@example.org" not in documents[0].text


# ------------------------------------------------------------------------------------------------ build + cache


@pytest.mark.slow
def test_build_split_writes_a_manifest_with_hashes_and_reuses_it(tmp_path: Path) -> None:
    config = SplitConfig(
        corpus="wikipedia", members=6, nonmembers=6, calibration=3, reference=2, min_words=40, max_words=80, seed=5
    )
    split = build_split(config, cache_root=tmp_path)
    manifest = split.manifest
    assert manifest["sizes"] == {"member": 6, "nonmember": 6, "calibration": 3, "reference": 2, "tokenizer": 0}
    texts = {d.id: d.text for name in SPLITS for d in split.parts[name]}
    for entry in manifest["documents"]:
        assert entry["sha256"] == hashlib.sha256(texts[entry["id"]].encode("utf-8")).hexdigest()
        assert 40 <= len(texts[entry["id"]].split()) <= 80
    assert [e["split"] for e in manifest["documents"]].count("member") == 6
    cached = list((tmp_path / "bench" / "splits").iterdir())
    assert len(cached) == 1
    again = build_split(config, cache_root=tmp_path)
    assert again.fingerprint == split.fingerprint
    assert [d.id for d in again.members] == [d.id for d in split.members]
    # a tampered cache is refused, not silently used
    lines = (cached[0] / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["text"] += " (edited)"
    lines[0] = json.dumps(record)
    (cached[0] / "documents.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="manifest hash"):
        load_split(cached[0])


def test_split_config_validates_sizes() -> None:
    with pytest.raises(InputError, match="unknown corpus"):
        SplitConfig(corpus="nope")
    with pytest.raises(InputError, match="at least one member"):
        SplitConfig(members=0)
    with pytest.raises(InputError, match="max_words"):
        SplitConfig(min_words=50, max_words=10)
