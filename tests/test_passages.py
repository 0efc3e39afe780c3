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
from llm_mia.passages import (
    Source,
    cut_passages,
    passages_from_path,
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


def _covered(spans: list[tuple[int, int]], length: int) -> bool:
    covered = [False] * length
    for start, end in spans:
        for position in range(start, end):
            covered[position] = True
    return all(covered)


@settings(max_examples=300, deadline=None)
@given(
    n_tokens=st.integers(min_value=1, max_value=2000),
    passage_tokens=st.integers(min_value=1, max_value=300),
    stride_fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_plan_covers_every_token_with_equal_passages_no_longer_than_asked(n_tokens, passage_tokens, stride_fraction):
    stride = max(1, round(stride_fraction * passage_tokens))
    spans = plan_passages(n_tokens, passage_tokens=passage_tokens, stride=stride)
    assert spans[0][0] == 0 and spans[-1][1] == n_tokens
    assert _covered(spans, n_tokens)
    lengths = {end - start for start, end in spans}
    assert len(lengths) == 1  # one length per source: no short tail fragment
    (length,) = lengths
    assert length <= passage_tokens
    if n_tokens <= passage_tokens:
        assert spans == [(0, n_tokens)]
    else:
        assert length > passage_tokens / 2  # never a fragment: more than half the asked length
    starts = [start for start, _ in spans]
    assert all(0 < b - a <= stride for a, b in itertools.pairwise(starts))
    if stride == passage_tokens and len(spans) > 1:
        # no-overlap setting: neighbours share at most one token, and the count is the fewest that fit
        assert all(prev_end - start <= 1 for (_, prev_end), (start, _) in itertools.pairwise(spans))
        assert len(spans) == -(-n_tokens // passage_tokens)


def test_plan_examples_worked_by_hand():
    # 130 tokens in passages of at most 128: two passages of 65 rather than 128 + a 2-token tail
    assert plan_passages(130, passage_tokens=128) == [(0, 65), (65, 130)]
    # exact multiple: plain consecutive blocks
    assert plan_passages(12, passage_tokens=4) == [(0, 4), (4, 8), (8, 12)]
    # shorter than one passage: the whole source
    assert plan_passages(5, passage_tokens=128) == [(0, 5)]
    assert plan_passages(0, passage_tokens=128) == []
    # overlapping: 10 tokens, length 4, stride 3 -> starts 0, 3, 6 would end at 10 only with a 4th; evenly spread
    spans = plan_passages(10, passage_tokens=4, stride=3)
    assert spans == [(0, 4), (3, 7), (6, 10)]


@pytest.mark.parametrize(("passage_tokens", "stride"), [(0, None), (8, 9), (8, 0)])
def test_invalid_passage_settings_are_refused(passage_tokens, stride):
    with pytest.raises(LlmMiaError, match="passage"):
        plan_passages(100, passage_tokens=passage_tokens, stride=stride)


@pytest.mark.parametrize(("passage_tokens", "stride"), [(5, None), (16, None), (16, 7), (40, 40)])
def test_passage_offsets_map_back_to_the_exact_source_text(tokenizer, passage_tokens, stride):
    source = Source(name="tricky.txt", text=TRICKY)
    passages = cut_passages(source, tokenizer=tokenizer, passage_tokens=passage_tokens, stride=stride)
    n_tokens = len(tokenizer(TRICKY, add_special_tokens=False)["input_ids"])
    assert passages[0].char_start == 0 and passages[-1].char_end == len(TRICKY)
    assert passages[0].token_start == 0 and passages[-1].token_end == n_tokens
    for passage in passages:
        assert passage.text == TRICKY[passage.char_start : passage.char_end]
        assert passage.source == "tricky.txt" and passage.text
        assert passage.n_tokens <= passage_tokens
    assert _covered([(p.char_start, p.char_end) for p in passages], len(TRICKY))
    assert len({p.id for p in passages}) == len(passages)


def test_passage_text_is_what_its_tokens_decode_to(tokenizer):
    # ASCII text, so no token boundary falls inside a character: each passage is exactly its tokens' text
    text = "The committee met on Tuesday at 9:30 to review the budget.  After a long discussion,\nmembers agreed."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for passage in cut_passages(Source("a", text), tokenizer=tokenizer, passage_tokens=7):
        assert tokenizer.decode(ids[passage.token_start : passage.token_end]) == passage.text


def test_non_overlapping_passages_concatenate_back_to_the_work(tokenizer):
    text = TRICKY * 3
    passages = cut_passages(Source("w", text), tokenizer=tokenizer, passage_tokens=24)
    rebuilt = passages[0].text
    for previous, passage in itertools.pairwise(passages):
        assert passage.char_start <= previous.char_end  # touching or sharing at most one token's characters
        rebuilt += text[previous.char_end : passage.char_end]
    assert rebuilt == text


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
    sources = read_sources(work)
    assert [s.name for s in sources] == ["ch1.txt", "empty.txt", "part2/ch2.md"]
    assert "\r\n" in sources[2].text  # no newline translation: offsets index the file's exact text
    passages = passages_from_path(work, tokenizer=tokenizer, passage_tokens=12)
    assert {p.source for p in passages} == {"ch1.txt", "part2/ch2.md"}  # the empty file gives no passage
    for passage in passages:
        file_text = (work / passage.source).read_bytes().decode("utf-8")
        assert file_text[passage.char_start : passage.char_end] == passage.text


def test_single_markdown_file_and_document_file(tmp_path, tokenizer):
    markdown = tmp_path / "essay.md"
    markdown.write_text("## Title\n\nBody text of the essay.\n", encoding="utf-8")
    assert read_sources(markdown) == [Source("essay.md", "## Title\n\nBody text of the essay.\n")]
    table = tmp_path / "articles.jsonl"
    rows = [{"id": "a1", "text": "First article text."}, {"id": "a2", "text": "Second article, longer text."}]
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources = read_sources(table)
    assert [(s.name, s.text) for s in sources] == [(r["id"], r["text"]) for r in rows]
    passages = passages_from_sources(sources, tokenizer=tokenizer, passage_tokens=4)
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
    with caplog.at_level(logging.WARNING, logger="llm_mia.passages"):
        passages = passages_from_sources([Source("w", TRICKY)], tokenizer=tokenizer, passage_tokens=10, stride=5)
    assert "overlap" in caplog.text
    assert passages[1].token_start < passages[0].token_end

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(LlmMiaError, match="fast tokenizer"):
        cut_passages(Source("w", "text"), tokenizer=SlowTokenizer(), passage_tokens=4)
