"""Readers: every supported format, and the errors that name the file, line and fix."""

from __future__ import annotations

import json

import pytest

from llm_mia.errors import InputError
from llm_mia.io.documents import Columns, Document, as_documents, read_documents

RECORDS = [
    {"id": "a", "text": "first text", "label": 1, "group": "book"},
    {"id": "b", "text": 'second, with "quotes"\nand a newline', "label": 0, "group": "book"},
    {"id": "c", "text": "   ", "label": None, "group": None},
]
EXPECTED = [
    Document("a", "first text", 1, "book"),
    Document("b", 'second, with "quotes"\nand a newline', 0, "book"),
    Document("c", "   ", None, None),
]


def test_jsonl_json_csv_parquet_and_saved_dataset_agree(tmp_path):
    import datasets
    import pandas as pd

    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n")
    (tmp_path / "d.json").write_text(json.dumps(RECORDS))
    pd.DataFrame(RECORDS).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(RECORDS).to_parquet(tmp_path / "d.parquet")
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "saved"))
    for name in ("d.jsonl", "d.json", "d.csv", "d.parquet", "saved"):
        assert read_documents(tmp_path / name) == EXPECTED, name


def test_text_directory_and_single_file(tmp_path):
    (tmp_path / "book" / "part").mkdir(parents=True)
    (tmp_path / "book" / "one.txt").write_text("Chapter one.")
    (tmp_path / "book" / "part" / "two.txt").write_text("Chapter two.")
    (tmp_path / "book" / "notes.md").write_text("Notes.")
    (tmp_path / "book" / "LICENSE").write_text("Public domain.")  # no extension: still a text file
    (tmp_path / "book" / ".hidden.txt").write_text("ignored")
    (tmp_path / "book" / "cover.png").write_bytes(b"\x89PNG")
    assert read_documents(tmp_path / "book") == [
        Document("LICENSE", "Public domain."),
        Document("notes.md", "Notes."),
        Document("one.txt", "Chapter one."),
        Document("part/two.txt", "Chapter two."),
    ]
    assert read_documents(tmp_path / "book" / "one.txt") == [Document("one.txt", "Chapter one.")]
    assert read_documents(tmp_path / "book" / "LICENSE") == [Document("LICENSE", "Public domain.")]


def test_missing_ids_get_stable_positions_and_custom_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "x", "member": true}\n{"body": "y", "member": false}\n')
    documents = read_documents(path, columns=Columns(text="body", label="member"))
    assert documents == [Document("0", "x", 1), Document("1", "y", 0)]


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: invalid UTF-8.*re-encode"):
        read_documents(path)
    csv_path = tmp_path / "bad.csv"
    csv_path.write_bytes(b"text\nok\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"bad\.csv:3: invalid UTF-8"):
        read_documents(csv_path)


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "no closing brace"\n')
    with pytest.raises(InputError, match=r"broken\.jsonl:2: malformed JSON"):
        read_documents(path)
    path.write_text('{"text": "ok"}\n["a", "list"]\n')
    with pytest.raises(InputError, match=r"broken\.jsonl:2: expected a JSON object"):
        read_documents(path)


def test_missing_text_column_lists_the_columns_found(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("body,member\nhello,1\n")
    with pytest.raises(InputError, match=r"no text column 'text'; columns found: 'body', 'member'.*--text-column"):
        read_documents(path)
    with pytest.raises(InputError, match="columns found: 'text'"):
        import pandas as pd

        pd.DataFrame({"text": ["x"]}).to_parquet(tmp_path / "d.parquet")
        read_documents(tmp_path / "d.parquet", columns=Columns(text="content"))


def test_bad_labels_duplicates_paths_and_types(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "x", "label": "maybe"}\n')
    with pytest.raises(InputError, match=r"d\.jsonl:1: label 'maybe' is not 0/1"):
        read_documents(path)
    path.write_text('{"id": 1, "text": "x"}\n{"id": 1, "text": "y"}\n')
    with pytest.raises(InputError, match="duplicate document id '1'"):
        read_documents(path)
    path.write_text('{"text": 5}\n')
    with pytest.raises(InputError, match="text must be a string"):
        read_documents(path)
    with pytest.raises(InputError, match="no such file"):
        read_documents(tmp_path / "missing.jsonl")
    (tmp_path / "d.xlsx").write_text("")
    with pytest.raises(InputError, match="unsupported extension"):
        read_documents(tmp_path / "d.xlsx")


def test_as_documents_accepts_strings_documents_and_dicts():
    documents = as_documents(["plain", Document("x", "doc"), {"text": "from dict", "label": 1}])
    assert documents == [Document("0", "plain"), Document("x", "doc"), Document("2", "from dict", 1)]
    with pytest.raises(InputError, match="item 0"):
        as_documents([3])
