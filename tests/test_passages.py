"""Passages of long works: token plans cover the work, offsets map back to the exact source text."""

from __future__ import annotations

import itertools
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import make_tokenizer

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.passages import (
    Source,
    cut_passages,
    passages_from_sources,
    plan_passages,
    read_sources,
)

# Text with the things that break offset bookkeeping: multi-byte characters split across byte-level tokens,
# an emoji, runs of spaces, CRLF line ends, tabs, blank lines.
TRICKY = (
    "Das Wörterbuch lag\taufgeschlagen.  Zwei  Leerzeichen, dann ein Emoji 😀 und ein Zitat: «ça va».\r\n"
    "\r\n"
    "The old lighthouse stood at the edge of the cliff for more than two hundred years; the keeper climbed "
    "the narrow stairs every evening.\n\n\n   Indented line after blank lines — with an em dash and naïve café.\n"
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tokenizer"), vocab_size=300)


@settings(max_examples=300, deadline=None)
@given(
    n_tokens=st.integers(min_value=0, max_value=2000),
    passage_tokens=st.integers(min_value=1, max_value=300),
    stride_fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_every_passage_has_exactly_the_asked_length_and_only_a_short_tail_is_unused(
    n_tokens, passage_tokens, stride_fraction
):
    stride = max(1, round(stride_fraction * passage_tokens))
    spans = plan_passages(n_tokens, passage_tokens=passage_tokens, stride=stride)
    assert all(end - start == passage_tokens for start, end in spans)  # one length on both sides of a test
    assert all(end <= n_tokens for _, end in spans)
    if n_tokens < passage_tokens:
        assert spans == []
        return
    starts = [start for start, _ in spans]
    assert starts[0] == 0 and all(b - a == stride for a, b in itertools.pairwise(starts))
    assert n_tokens - (starts[-1] + stride) < passage_tokens  # no further passage would fit


def test_plan_examples_worked_by_hand():
    assert plan_passages(130, passage_tokens=64) == [(0, 64), (64, 128)]  # a 2-token tail is left out
    assert plan_passages(12, passage_tokens=4) == [(0, 4), (4, 8), (8, 12)]
    assert plan_passages(5, passage_tokens=128) == []  # shorter than a passage: none (counted by the caller)
    assert plan_passages(10, passage_tokens=4, stride=3) == [(0, 4), (3, 7), (6, 10)]


@pytest.mark.parametrize(("passage_tokens", "stride"), [(0, None), (8, 9), (8, 0)])
def test_invalid_passage_settings_are_refused(passage_tokens, stride):
    with pytest.raises(LlmMiaError, match="passage"):
        plan_passages(100, passage_tokens=passage_tokens, stride=stride)


@pytest.mark.parametrize(("passage_tokens", "stride"), [(5, None), (16, None), (16, 7), (40, 40)])
def test_passage_offsets_map_back_to_the_exact_source_text(tokenizer, passage_tokens, stride):
    source = Source(name="tricky.txt", text=TRICKY, work="book")
    passages = cut_passages(source, tokenizer=tokenizer, passage_tokens=passage_tokens, stride=stride)
    assert passages and passages[0].char_start == 0 and passages[0].token_start == 0
    for passage in passages:
        assert passage.text == TRICKY[passage.char_start : passage.char_end]
        assert passage.source == "tricky.txt" and passage.work == "book" and passage.text
        assert passage.n_tokens == passage_tokens
    assert len({p.id for p in passages}) == len(passages)


def test_passage_text_is_what_its_tokens_decode_to(tokenizer):
    # ASCII text, so no token boundary falls inside a character: each passage is exactly its tokens' text
    text = "The committee met on Tuesday at 9:30 to review the budget.  After a long discussion,\nmembers agreed."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for passage in cut_passages(Source("a", text), tokenizer=tokenizer, passage_tokens=7):
        assert tokenizer.decode(ids[passage.token_start : passage.token_end]) == passage.text


def test_non_overlapping_passages_concatenate_back_to_the_work_up_to_its_tail(tokenizer):
    text = TRICKY * 3
    passages, cutting = passages_from_sources([Source("w", text)], tokenizer=tokenizer, passage_tokens=24)
    rebuilt = passages[0].text
    for previous, passage in itertools.pairwise(passages):
        assert passage.char_start <= previous.char_end  # touching or sharing at most one token's characters
        rebuilt += text[previous.char_end : passage.char_end]
    assert text.startswith(rebuilt)
    n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert cutting.tokens == n_tokens and cutting.tokens_in_passages == 24 * len(passages)
    assert cutting.to_dict()["tokens_unused"] == n_tokens % 24


def test_rescored_passages_have_about_the_planned_token_count(tokenizer):
    passages = cut_passages(Source("w", TRICKY * 2), tokenizer=tokenizer, passage_tokens=20)
    for passage in passages:
        alone = len(tokenizer(passage.text, add_special_tokens=False)["input_ids"])
        assert abs(alone - passage.n_tokens) <= 2  # only the edges may tokenize differently


def test_directory_of_text_and_markdown_files(tmp_path, tokenizer):
    work = tmp_path / "book"
    (work / "part2").mkdir(parents=True)
    (work / "ch1.txt").write_bytes(TRICKY.encode("utf-8"))
    (work / "part2" / "ch2.md").write_bytes(b"# Chapter two\r\n\r\nSome *markdown* text, kept as written.\r\n")
    (work / "notes.py").write_text("print('not part of the work')")
    (work / "empty.txt").write_text("")
    sources = read_sources(work, works="one", name="book")
    assert [s.name for s in sources] == ["ch1.txt", "empty.txt", "part2/ch2.md"]
    assert {s.work_id for s in sources} == {"book"}  # chapters of one book: one work
    assert "\r\n" in sources[2].text  # no newline translation: offsets index the file's exact text
    passages, cutting = passages_from_sources(sources, tokenizer=tokenizer, passage_tokens=12)
    assert {p.source for p in passages} == {"ch1.txt", "part2/ch2.md"}  # the empty file gives no passage
    assert "empty.txt" in cutting.too_short
    for passage in passages:
        file_text = (work / passage.source).read_bytes().decode("utf-8")
        assert file_text[passage.char_start : passage.char_end] == passage.text


def test_single_markdown_file_and_document_file(tmp_path, tokenizer):
    markdown = tmp_path / "essay.md"
    markdown.write_text("## Title\n\nBody text of the essay.\n", encoding="utf-8")
    assert read_sources(markdown) == [Source("essay.md", "## Title\n\nBody text of the essay.\n", "essay.md")]
    table = tmp_path / "articles.jsonl"
    rows = [{"id": "a1", "text": "First article text."}, {"id": "a2", "text": "Second article, longer text."}]
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources = read_sources(table)
    assert [(s.name, s.text) for s in sources] == [(r["id"], r["text"]) for r in rows]
    assert [s.work_id for s in sources] == ["a1", "a2"]  # by default each document is a work of its own
    passages, _ = passages_from_sources(sources, tokenizer=tokenizer, passage_tokens=4)
    by_source = {row["id"]: row["text"] for row in rows}
    assert all(by_source[p.source][p.char_start : p.char_end] == p.text for p in passages)


def test_reading_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_sources(tmp_path / "missing")
    (tmp_path / "book.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match=r"unsupported extension '\.pdf'"):
        read_sources(tmp_path / "book.pdf")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match=r"holds no text files"):
        read_sources(tmp_path / "nothing")
    (tmp_path / "latin1.txt").write_bytes(b"line one\ncaf\xe9\n")
    with pytest.raises(InputError, match=r"latin1.txt:2: invalid UTF-8"):
        read_sources(tmp_path / "latin1.txt")


def test_overlap_warns_and_slow_tokenizers_are_refused(tokenizer, caplog):
    with caplog.at_level(logging.WARNING, logger="llm_mia.io.passages"):
        passages, _ = passages_from_sources([Source("w", TRICKY)], tokenizer=tokenizer, passage_tokens=10, stride=5)
    assert "overlap" in caplog.text
    assert passages[1].token_start < passages[0].token_end

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(LlmMiaError, match="fast tokenizer"):
        cut_passages(Source("w", "text"), tokenizer=SlowTokenizer(), passage_tokens=4)


def test_works_by_group_column_or_as_one(tmp_path):
    table = tmp_path / "chapters.jsonl"
    rows = [
        {"id": "c1", "text": "First chapter.", "group": "book-a"},
        {"id": "c2", "text": "Second chapter.", "group": "book-a"},
        {"id": "c3", "text": "Another author.", "group": "book-b"},
    ]
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [s.work_id for s in read_sources(table, works="group")] == ["book-a", "book-a", "book-b"]
    assert {s.work_id for s in read_sources(table, works="one")} == {"chapters.jsonl"}
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "x", "text": "no group"}) + "\n")
    with pytest.raises(InputError, match="no document has a group"):
        read_sources(plain, works="group")
    with pytest.raises(InputError, match="unknown work unit 'chapter'"):
        read_sources(table, works="chapter")
