"""Score documents for membership in a model's training data (higher score = more likely a member).

examples:
  llm-mia score                                        # packaged SmolLM2 on the built-in sample text
  llm-mia score --input texts.jsonl --output scores.jsonl
  llm-mia score --model ./my-model --reference ./ref-model --input texts.csv --output scores.csv
  llm-mia score --input book/ --scorers loss zlib min_k:k=0.1,0.2 min_k_plus_plus --output scores.jsonl

Every document gets a row: id, label, group, status (ok, or why a score is missing), byte and token
counts, and one column per score. A run record (models, scorers, settings, input hash, versions) is written
beside the output as <output>.run.json.
"""

from __future__ import annotations

import argparse
import math

from llm_mia.cli.common import (
    add_input_arguments,
    add_model_arguments,
    add_scorer_arguments,
    documents_from_args,
    score_from_args,
)
from llm_mia.distributed import current_shard, is_main_process
from llm_mia.results import check_output_path, write_rows, write_run_record
from llm_mia.scoring import META_COLUMNS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    add_model_arguments(parser)
    add_scorer_arguments(parser)
    parser.add_argument("--output", help="write rows to this .jsonl or .csv file (default: print a table)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def _format(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def print_table(rows: list[dict]) -> None:
    """A compact table: id, status, tokens scored and each score."""
    if not rows:
        print("no documents")
        return
    columns = ["id", "n_scored", *[c for c in rows[0] if c not in META_COLUMNS], "status"]
    cells = [[_format(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for line in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)))
    print("higher score = more likely a member of the model's training data (a ranking, not a verdict)")


def run(args: argparse.Namespace) -> int:
    output = check_output_path(args.output, overwrite=args.overwrite) if args.output else None
    documents, source = documents_from_args(args)
    rows, record = score_from_args(args, documents, source)
    if not is_main_process(current_shard(args.device)):
        return 0  # the main process writes the merged rows
    if output is None:
        print_table(rows)
        return 0
    write_rows(rows, output)
    write_run_record(output, record)
    problems = sum(row["status"] != "ok" for row in rows)
    print(f"wrote {len(rows)} rows to {output} ({problems} with a non-ok status) and {output}.run.json")
    return 0
