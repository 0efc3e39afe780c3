"""Benchmark loaders on small WikiMIA / MIMIR / generic files written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_mia.errors import InputError
from llm_mia.io.documents import Columns, Document
from llm_mia.io.labelled_sets import detect_format, load_benchmark, load_labelled, load_mimir, load_wikimia

WIKIMIA = [
    {"input": "The Battle of Hastings was fought in 1066.", "label": 1},
    {"input": "The 2025 summit ended without an agreement.", "label": 0},
    {"input": "Photosynthesis converts light into chemical energy.", "label": 1},
]
MIMIR = [
    {"member": "def add(a, b): return a + b", "nonmember": "fn add(a: i32) -> i32 { a }", "member_neighbors": ["x"]},
    {"member": "import numpy as np", "nonmember": "use std::io;", "member_neighbors": ["y"]},
]


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _expected_wikimia():
    return [Document(id=f"wikimia-{i}", text=r["input"], label=r["label"]) for i, r in enumerate(WIKIMIA)]


def test_wikimia_from_json_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "w.json").write_text(json.dumps(WIKIMIA), encoding="utf-8")
    _write_jsonl(tmp_path / "w.jsonl", WIKIMIA)
    pq.write_table(pa.Table.from_pylist(WIKIMIA), tmp_path / "w.parquet")
    for name in ("w.json", "w.jsonl", "w.parquet"):
        assert load_wikimia(tmp_path / name) == _expected_wikimia()
        assert load_benchmark(tmp_path / name) == _expected_wikimia()  # auto-detected


def test_wikimia_from_saved_dataset_dict_needs_a_split(tmp_path):
    import datasets

    table = datasets.Dataset.from_list(WIKIMIA)
    datasets.DatasetDict({"WikiMIA_length32": table, "WikiMIA_length64": table}).save_to_disk(tmp_path / "wm")
    with pytest.raises(InputError, match="splits found: WikiMIA_length32, WikiMIA_length64"):
        load_wikimia(tmp_path / "wm")
    assert load_benchmark(tmp_path / "wm", split="WikiMIA_length32") == _expected_wikimia()


def test_mimir_pairs_become_two_documents(tmp_path):
    import datasets

    expected = [
        Document(id="member-0", text=MIMIR[0]["member"], label=1),
        Document(id="nonmember-0", text=MIMIR[0]["nonmember"], label=0),
        Document(id="member-1", text=MIMIR[1]["member"], label=1),
        Document(id="nonmember-1", text=MIMIR[1]["nonmember"], label=0),
    ]
    assert load_mimir(_write_jsonl(tmp_path / "m.jsonl", MIMIR)) == expected
    datasets.Dataset.from_list(MIMIR).save_to_disk(tmp_path / "m")
    assert detect_format(tmp_path / "m") == "mimir"
    assert load_benchmark(tmp_path / "m") == expected


def test_mimir_skips_an_empty_side(tmp_path):
    records = [*MIMIR, {"member": "only a member here", "nonmember": ""}]
    documents = load_mimir(_write_jsonl(tmp_path / "m.jsonl", records))
    assert [d.id for d in documents][-1] == "member-2" and len(documents) == 5


def test_generic_labelled_csv_and_missing_labels(tmp_path):
    (tmp_path / "g.csv").write_text("doc,body,member\na,first text,1\nb,second text,0\n", encoding="utf-8")
    columns = Columns(text="body", id="doc", label="member")
    assert detect_format(tmp_path / "g.csv") == "generic"
    assert load_benchmark(tmp_path / "g.csv", columns=columns) == [
        Document(id="a", text="first text", label=1),
        Document(id="b", text="second text", label=0),
    ]
    _write_jsonl(tmp_path / "u.jsonl", [{"text": "x", "label": 1}, {"text": "y"}, {"text": "z", "label": 0}])
    with pytest.raises(InputError, match=r"1 document\(s\) have no label in column 'label' \(first: '1'\)"):
        load_labelled(tmp_path / "u.jsonl")


def test_errors_name_the_problem(tmp_path):
    _write_jsonl(tmp_path / "one.jsonl", [{"input": "a", "label": 1}, {"input": "b", "label": 1}])
    with pytest.raises(InputError, match="found 2 members and 0 non-members"):
        load_benchmark(tmp_path / "one.jsonl")
    _write_jsonl(tmp_path / "bad.jsonl", [{"input": "a", "label": 3}])
    with pytest.raises(InputError, match="label 3 is not 0/1"):
        load_wikimia(tmp_path / "bad.jsonl")
    _write_jsonl(tmp_path / "nolabel.jsonl", [{"input": "a"}])
    with pytest.raises(InputError, match="missing label"):
        load_wikimia(tmp_path / "nolabel.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"input": "a", "label": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken.jsonl:2: malformed JSON"):
        load_wikimia(tmp_path / "broken.jsonl")
    with pytest.raises(InputError, match="unknown labelled-set format 'bookmia'; did you mean wikimia"):
        load_benchmark(tmp_path / "one.jsonl", format="bookmia")
    with pytest.raises(InputError, match="no such file"):
        load_mimir(tmp_path / "absent.jsonl")


WIKIMIA_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia"


@pytest.mark.skipif(not WIKIMIA_FILES.is_dir(), reason="the shared WikiMIA copy is not beside the project")
@pytest.mark.slow
def test_the_real_wikimia_file_loads_and_its_shift_is_reported():
    from llm_mia.stats.blind_baseline import blind_baseline

    documents = load_benchmark(WIKIMIA_FILES / "64.jsonl")  # the format is detected from the fields
    assert len(documents) == 542 and {d.label for d in documents} == {0, 1}
    members = [d.text for d in documents if d.label == 1][:40]
    nonmembers = [d.text for d in documents if d.label == 0][:40]
    result = blind_baseline(members, nonmembers, seed=0, n_bootstrap=50, n_permutations=19)
    # events written before 2017 vs after 2023: a model-free classifier separates them (Das et al. 2024: 0.99)
    assert result.auroc > 0.8 and result.separates
    assert "distribution shift" in result.warning(best_attack_auroc=0.99)
