"""Labelled sets from local files: WikiMIA, MIMIR and generic labelled tables -> Documents.

Nothing here downloads: point the loaders at files you already have (e.g. saved with
``datasets.load_dataset(...).save_to_disk(...)`` or exported to JSONL/Parquet).

* **WikiMIA** (Shi et al. 2023): one record per text, ``input`` = the text, ``label`` = 1 member / 0 non-member.
* **MIMIR** (Duan et al. 2024): one record per *pair*, ``member`` = a member text and ``nonmember`` = a non-member
  text (other columns, e.g. neighbours, are ignored). Each record yields two documents, ids
  ``member-<row>`` and ``nonmember-<row>``; an empty or missing side is skipped.
* **generic**: any input ``llm_mia.io.documents.read_documents`` reads, with a label on every document.

Files may be ``.json`` (a list of objects), ``.jsonl``, ``.csv``, ``.parquet`` or a ``save_to_disk`` directory
(pick a split of a DatasetDict with ``split``, e.g. ``WikiMIA_length32``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, unknown_name
from llm_mia.io.documents import Columns, Document, check_unique_ids, parse_label, read_documents, read_records

logger = logging.getLogger(__name__)

FORMATS = ("auto", "wikimia", "mimir", "generic")


def _read_records(path: Path, *, split: str | None) -> list[dict[str, Any]]:
    """Rows of a JSON / JSONL / CSV / Parquet file or a saved datasets directory, as dicts."""
    return [record for _, record in read_records(path, split=split)]


def _label(value: Any, where: str) -> int:
    """A required label, by the one label rule (``llm_mia.io.documents.parse_label``)."""
    label = parse_label(value, where)
    if label is None:
        raise InputError(f"{where}: no label; a labelled set needs 1 (member) or 0 (non-member) on every text")
    return label


def _check_both_classes(documents: Sequence[Document], source: str) -> None:
    members = sum(d.label == 1 for d in documents)
    nonmembers = sum(d.label == 0 for d in documents)
    if members == 0 or nonmembers == 0:
        raise InputError(
            f"{source}: a labelled benchmark needs members and non-members; found {members} members and "
            f"{nonmembers} non-members"
        )


def load_wikimia(path: str | Path, *, split: str | None = None) -> list[Document]:
    """WikiMIA format: records with ``input`` (text) and ``label`` (1 member, 0 non-member); ids ``wikimia-<row>``."""
    path = Path(path)
    documents = []
    for index, record in enumerate(_read_records(path, split=split)):
        where = f"{path} record {index}"
        missing = [key for key in ("input", "label") if key not in record]
        if missing:
            raise InputError(
                f"{where}: WikiMIA records need 'input' and 'label'; missing {', '.join(missing)}; "
                f"fields found: {', '.join(record) or 'none'}"
            )
        if not isinstance(record["input"], str):
            raise InputError(f"{where}: 'input' must be a string, got {type(record['input']).__name__}")
        documents.append(Document(id=f"wikimia-{index}", text=record["input"], label=_label(record["label"], where)))
    _check_both_classes(documents, str(path))
    logger.info("read %d WikiMIA documents from %s", len(documents), path)
    return documents


def load_mimir(path: str | Path, *, split: str | None = None) -> list[Document]:
    """MIMIR format: records with ``member`` and ``nonmember`` texts; ids ``member-<row>`` / ``nonmember-<row>``."""
    path = Path(path)
    documents = []
    for index, record in enumerate(_read_records(path, split=split)):
        where = f"{path} record {index}"
        if "member" not in record and "nonmember" not in record:
            raise InputError(
                f"{where}: MIMIR records need 'member' and/or 'nonmember' text fields; "
                f"fields found: {', '.join(record) or 'none'}"
            )
        for key, label in (("member", 1), ("nonmember", 0)):
            text = record.get(key)
            if text is None or (isinstance(text, str) and not text.strip()):
                continue
            if not isinstance(text, str):
                raise InputError(f"{where}: {key!r} must be a string, got {type(text).__name__}")
            documents.append(Document(id=f"{key}-{index}", text=text, label=label))
    _check_both_classes(documents, str(path))
    logger.info("read %d MIMIR documents from %s", len(documents), path)
    return documents


def load_labelled(path: str | Path, *, columns: Columns | None = None, split: str | None = None) -> list[Document]:
    """Any input ``read_documents`` reads, where every document carries a 0/1 label."""
    documents = read_documents(path, columns=columns, split=split)
    unlabelled = [d.id for d in documents if d.label is None]
    if unlabelled:
        label_column = (columns or Columns()).label
        raise InputError(
            f"{path}: {len(unlabelled)} document(s) have no label in column {label_column!r} "
            f"(first: {unlabelled[0]!r}); evaluation needs 1 = member / 0 = non-member on every document "
            f"(name the column with --label-column)"
        )
    _check_both_classes(documents, str(path))
    return documents


def detect_format(path: str | Path, *, columns: Columns | None = None, split: str | None = None) -> str:
    """'wikimia', 'mimir' or 'generic', from the fields of the first record."""
    path = Path(path)
    columns = columns or Columns()
    is_record_file = path.is_dir() or path.suffix.lower() in (".json", ".jsonl", ".parquet")
    if not is_record_file:
        return "generic"
    try:
        records = _read_records(path, split=split)
    except InputError:
        return "generic"  # let the generic reader report the problem in its own terms
    fields = set(records[0]) if records else set()
    if columns.text not in fields and "input" in fields and "label" in fields:
        return "wikimia"
    if columns.text not in fields and ("member" in fields or "nonmember" in fields):
        return "mimir"
    return "generic"


def load_benchmark(
    path: str | Path, *, format: str = "auto", columns: Columns | None = None, split: str | None = None
) -> list[Document]:
    """Load a labelled set in the given ``format`` (one of ``FORMATS``; ``auto`` looks at the fields)."""
    if format not in FORMATS:
        raise unknown_name("labelled-set format", format, FORMATS)
    if format == "auto":
        format = detect_format(path, columns=columns, split=split)
        logger.info("%s: detected %s format", path, format)
    if format == "wikimia":
        documents = load_wikimia(path, split=split)
    elif format == "mimir":
        documents = load_mimir(path, split=split)
    else:
        documents = load_labelled(path, columns=columns, split=split)
    check_unique_ids(documents, source=str(path))
    return documents
