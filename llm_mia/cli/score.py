"""Score documents for membership in a model's training data (higher score = more likely a member).

examples:
  llm-mia score                                        # packaged SmolLM2 on the built-in sample text
  llm-mia score --input texts.jsonl --output scores.jsonl
  llm-mia score --model ./my-model --reference ./ref-model --input texts.csv --output scores.csv
  llm-mia score --input book/ --scorers loss zlib min_k:k=0.1,0.2 min_k_plus_plus --output scores.jsonl
  llm-mia score --model api:davinci-002 --api-base https://api.openai.com/v1 --input texts.jsonl --dry-run \\
      --price-per-million-tokens 2.0           # what a paid API would be sent and cost, sending nothing

Every document gets a row: id, label, group, status (ok, or why a score is missing), byte and token
counts, the SHA-256 of its text, and one column per score. A run record (models, scorers, settings, input
hash, versions, command line) is written beside the output as <output>.run.json; for a model behind an API,
every request (endpoint, request hash, the model version the API reports, time) is logged in
<output>.queries.jsonl, each line carrying the SHA-256 of the line before.
"""

from __future__ import annotations

import argparse
from typing import Any

from llm_mia.cli.common import (
    add_input_arguments,
    add_model_arguments,
    add_precision_check_argument,
    add_scorer_arguments,
    check_precision_arguments,
    documents_from_args,
    scoring_settings_from_args,
)
from llm_mia.errors import OutputError
from llm_mia.io.score_files import META_COLUMNS, check_score_output
from llm_mia.io.tables import cell, text_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    add_model_arguments(parser)
    add_scorer_arguments(parser)
    add_precision_check_argument(parser)
    parser.add_argument("--output", help="write rows to this .jsonl or .csv file (default: print a table)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="for models behind an API: print the requests and tokens the run would send, and send nothing",
    )
    parser.add_argument(
        "--price-per-million-tokens", type=float, help="with --dry-run: price of a million prompt tokens"
    )


def table_lines(rows: list[dict]) -> list[str]:
    """A compact table: id, tokens scored, each score, status."""
    columns = ["id", "n_scored", *[c for c in rows[0] if c not in META_COLUMNS], "status"]
    lines = text_table(columns, [[cell(row[c], fmt=".4f") for c in columns] for row in rows])
    return [*lines, "higher score = more likely a member of the model's training data (a ranking, not a verdict)"]


def dry_run(settings: Any, documents: list, price: float | None) -> int:
    """Print what the run would send to each model behind an API; send nothing."""
    from llm_mia.scoring.request_estimate import estimate_requests

    specs = settings.models.specs()
    roles = {role: spec.name for role, spec in specs.items() if spec.name in settings.models.remote_names}
    if not roles:
        print("--dry-run counts requests to models behind an API (--model api:NAME); these models run locally")
        return 0
    for estimate in estimate_requests(documents, settings.calls, roles=roles):
        for line in estimate.describe(price):
            print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.score import score_documents

    check_precision_arguments(args)
    output = check_score_output(args.output, overwrite=args.overwrite) if args.output else None
    settings = scoring_settings_from_args(args)
    documents, source = documents_from_args(args)
    if args.dry_run:
        return dry_run(settings, documents, args.price_per_million_tokens)
    check = None
    if args.precision_check is not None:
        from llm_mia.workflows.precision import precision_check

        labels = [d.label for d in documents if d.label is not None]
        check = precision_check(
            documents, settings, size=args.precision_check, labels=labels if len(labels) == len(documents) else None
        )
        for line in check.lines():
            print(line)
    log = None
    if output is not None and settings.models.remote_names:
        from llm_mia.evidence.query_log import QueryLog
        from llm_mia.io.identity import sha256_texts

        anchor = sha256_texts([d.text for d in documents])  # binds the log to the texts scored
        log = QueryLog(f"{output}.queries.jsonl", anchor=anchor, model_hashes={})
    try:
        result = score_documents(documents, settings, source=source, observer=None if log is None else log.record)
    except BaseException:
        if log is not None:
            log.close(keep_empty=False)  # a log of what was sent before the failure, or no file at all
        raise
    if log is not None:
        logged = log.close()
        result.record["query_log"] = {"path": str(log.path), "anchor": "sha256 of the input texts", **logged}
    if check is not None:
        result.record["precision_check"] = check.to_dict()
    if not result.is_main:
        return 0  # the main process writes the merged rows
    if output is None:
        for line in table_lines(result.rows):
            print(line)
        return 0
    try:
        result.write(output)
    except OutputError as error:
        if settings.cache_path is None:
            raise
        raise OutputError(
            f"{error}; every score is kept in the stats cache, so the same command run again writes them without "
            f"computing them again"
        ) from error
    print(f"wrote {len(result.rows)} rows to {output} ({result.n_not_ok} with a non-ok status) and {output}.run.json")
    if log is not None:
        print(f"every request to the API is logged, hash-chained, in {log.path} ({logged['lines']} lines)")
    return 0
