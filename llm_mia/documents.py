"""Documents and the readers that turn user files into them.

Supported inputs: JSON Lines (``.jsonl``), a JSON list of objects (``.json``), CSV (``.csv``), Parquet
(``.parquet``), a single text file (one document: ``.txt``, ``.md``, ``.markdown``, ``.rst``, ``.text`` or no
extension at all, such as ``LICENSE``), a directory of such text files (one document each, id = relative path;
hidden files skipped) and a directory written by ``datasets.Dataset.save_to_disk``.

Every reader validates as it goes and raises :class:`~llm_mia.errors.InputError` naming the file, the line
or row, and the fix. Empty or whitespace-only texts are *not* errors here: they are read and later given a
per-document status, so one bad row never costs the rest of the run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".text", "")  # "" = no extension (LICENSE, COPYING)
SUPPORTED_FORMATS = (
    ".jsonl, .json, .csv, .parquet, a text file (.txt, .md, .rst or no extension), a directory of text files, "
    "a saved datasets directory"
)


@dataclass(frozen=True)
class Document:
    """One text to score.

    ``label`` is 1 for a known member, 0 for a known non-member, None when unknown. ``group`` names the work
    a passage belongs to (a book, a site) for dataset-level tests.
    """

    id: str
    text: str
    label: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class Columns:
    """Which input columns hold which fields. Only ``text`` is required to exist."""

    text: str = "text"
    id: str = "id"
    label: str = "label"
    group: str = "group"


def parse_label(value: Any, where: str) -> int | None:
    """The one label rule: 1 (member), 0 (non-member) or None (unlabelled).

    Accepts bools, the numbers 0 and 1 (``1.0`` too) and strings such as ``"1"``, ``"0.0"``, ``"true"``; None,
    NaN and empty / ``"nan"`` / ``"none"`` / ``"null"`` strings mean unlabelled. Anything else is an error
    naming ``where``.

    >>> [parse_label(v, "row 1") for v in (1, 0.0, "true", " 1 ", None, float("nan"), "")]
    [1, 0, 1, 1, None, None, None]
    """
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: unlabelled
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "nan", "none", "null"):
            return None
        if text in ("true", "false"):
            return int(text == "true")
        with contextlib.suppress(ValueError):
            value = float(text)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    raise InputError(f"{where}: label {value!r} is not 0/1 (1 = member, 0 = non-member); fix the label column")


def _record_to_document(record: Mapping[str, Any], index: int, columns: Columns, where: str) -> Document:
    if columns.text not in record:
        found = ", ".join(map(repr, record.keys())) or "none"
        raise InputError(
            f"{where}: no text column {columns.text!r}; columns found: {found}. "
            f"Pass the right name with --text-column (or columns=Columns(text=...))."
        )
    text = record[columns.text]
    if not isinstance(text, str):
        raise InputError(f"{where}: text must be a string, got {type(text).__name__} ({text!r:.60})")
    raw_id = record.get(columns.id)
    doc_id = str(index) if raw_id is None or raw_id == "" else str(raw_id)
    label = parse_label(record.get(columns.label), where)
    group = record.get(columns.group)
    missing_group = group is None or group == "" or (isinstance(group, float) and group != group)
    return Document(id=doc_id, text=text, label=label, group=None if missing_group else str(group))


def _decode_lines(path: Path) -> list[str]:
    """Decode a file line by line so invalid UTF-8 is reported with its line number."""
    lines = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                raise InputError(
                    f"{path}:{number}: invalid UTF-8 at byte {error.start} of the line ({raw[:40]!r}...); "
                    f"re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
    return lines


Record = tuple[str, dict[str, Any]]  # (where it came from: "file:line" or "file row i", the row)


def _jsonl_records(path: Path) -> list[Record]:
    records = []
    for number, line in enumerate(_decode_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{path}:{number}: malformed JSON ({error.msg} at column {error.colno}); "
                f"each line must be one JSON object"
            ) from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        records.append((f"{path}:{number}", record))
    return records


def _json_records(path: Path) -> list[Record]:
    text = "".join(_decode_lines(path))
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{path}: a .json input must be a list of objects; use .jsonl for one object per line")
    return [(f"{path} item {i}", r) for i, r in enumerate(records)]


def _csv_records(path: Path) -> list[Record]:
    """Rows of a CSV file, read strictly: an unterminated quote (which a lenient reader turns into one cell
    holding the rest of the file) or text after a closing quote is refused, naming the line the row starts on."""
    reader = csv.DictReader(io.StringIO("".join(_decode_lines(path)), newline=""), strict=True)
    records = []
    start = 1
    try:
        _ = reader.fieldnames  # reads the header, so that the line numbers below are the rows'
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            # a row's line number is where it ends; multi-line quoted fields make it differ from the row index
            records.append((f"{path}:{reader.line_num}", row))
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            raise InputError(
                f"{path}:{start}: a quoted field opened in the row starting on this line is never closed (an "
                f'unterminated "), so the rest of the file would be read as one cell; close the quote, or double '
                f'a quote inside a quoted field ("")'
            ) from None
        raise InputError(
            f"{path}:{start}: malformed CSV in the row starting on this line ({error}); a quote inside a quoted "
            f'field is written twice ("") and a quoted field ends at a comma or the end of the line'
        ) from None
    return records


def _parquet_records(path: Path) -> list[Record]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pyarrow.ArrowException, OSError) as error:
        reason = " ".join(str(error).split()).rstrip(".")
        raise InputError(
            f"{path}: not a readable Parquet file ({reason}); write it again (e.g. pandas' to_parquet), or give "
            f"the rows as .jsonl or .csv"
        ) from None
    return [(f"{path} row {i}", r) for i, r in enumerate(table.to_pylist())]


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    )


def _saved_dataset_records(path: Path, split: str | None) -> list[Record]:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded.keys())
        if split is None and len(names) == 1:
            split = names[0]
        if split not in loaded:
            raise InputError(f"{path}: choose a split with --split; splits found: {', '.join(names)}")
        loaded = loaded[split]
    return [(f"{path} row {i}", dict(r)) for i, r in enumerate(loaded)]


_RECORD_READERS = {".jsonl": _jsonl_records, ".json": _json_records, ".csv": _csv_records, ".parquet": _parquet_records}
RECORD_FORMATS = ".jsonl, .json, .csv, .parquet or a saved datasets directory"


def read_records(path: str | Path, *, split: str | None = None) -> list[Record]:
    """Rows of a table-like input (JSONL, JSON list, CSV, Parquet, saved datasets directory) as dicts.

    Each row comes with where it was found ("file:line" or "file row i") for error messages. Invalid UTF-8
    and malformed JSON are reported with their line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory; expected {RECORD_FORMATS}")
    if _is_saved_dataset(path):
        return _saved_dataset_records(path, split)
    reader = _RECORD_READERS.get(path.suffix.lower())
    if path.is_dir() or reader is None:
        raise InputError(f"{path}: unsupported input {path.suffix or 'directory'!r}; expected {RECORD_FORMATS}")
    return reader(path)


def _read_text_file(path: Path, doc_id: str) -> Document:
    return Document(id=doc_id, text="".join(_decode_lines(path)))


def is_text_file(path: Path) -> bool:
    """A file read as one plain text: a text suffix or none at all, not hidden."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in TEXT_SUFFIXES


def text_files(directory: Path) -> list[Path]:
    """Every text file below ``directory`` (hidden files and directories skipped), in sorted path order."""
    return sorted(
        p
        for p in directory.rglob("*")
        if is_text_file(p) and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )


def _read_text_directory(path: Path) -> list[Document]:
    files = text_files(path)
    if not files:
        raise InputError(
            f"{path}: directory holds no text files (.txt, .md, .rst or no extension) and is not a saved "
            f"datasets directory"
        )
    return [_read_text_file(p, p.relative_to(path).as_posix()) for p in files]


def read_documents(path: str | Path, *, columns: Columns | None = None, split: str | None = None) -> list[Document]:
    """Read documents from a file or directory (format chosen by extension; see module docstring).

    Raises InputError for a missing path, an unsupported format, invalid UTF-8, malformed JSON, a missing
    text column, a non-string text, an invalid label or duplicate ids.
    """
    path = Path(path)
    columns = columns or Columns()
    if not path.exists():
        raise InputError(f"{path}: no such file or directory; supported inputs: {SUPPORTED_FORMATS}")
    if path.is_dir() and not _is_saved_dataset(path):
        documents = _read_text_directory(path)
    elif path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
        documents = [_read_text_file(path, path.name)]
    elif _is_saved_dataset(path) or path.suffix.lower() in _RECORD_READERS:
        records = read_records(path, split=split)
        documents = [_record_to_document(record, i, columns, where) for i, (where, record) in enumerate(records)]
    else:
        raise InputError(
            f"{path}: unsupported extension {path.suffix.lower()!r}; supported inputs: {SUPPORTED_FORMATS}"
        )
    check_unique_ids(documents, source=str(path))
    logger.info("read %d documents from %s", len(documents), path)
    return documents


def check_unique_ids(documents: Sequence[Document], *, source: str) -> None:
    """Ids key every output row; a duplicate would silently merge two documents' results."""
    seen: set[str] = set()
    for document in documents:
        if document.id in seen:
            raise InputError(f"{source}: duplicate document id {document.id!r}; ids must be unique")
        seen.add(document.id)


def as_documents(
    items: Iterable[str | Document | Mapping[str, Any]], *, columns: Columns | None = None
) -> list[Document]:
    """Normalise what a Python caller passes (strings, Documents or dicts) into Documents.

    Items without an id get their position in the input as id, so ids are stable across runs.
    """
    columns = columns or Columns()
    documents = []
    for index, item in enumerate(items):
        if isinstance(item, Document):
            documents.append(item)
        elif isinstance(item, str):
            documents.append(Document(id=str(index), text=item))
        elif isinstance(item, Mapping):
            documents.append(_record_to_document(item, index, columns, f"item {index}"))
        else:
            raise InputError(f"item {index}: expected a string, Document or dict, got {type(item).__name__}")
    check_unique_ids(documents, source="input")
    return documents
