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

from llm_mia.cli.common import (
    add_input_arguments,
    add_model_arguments,
    add_precision_check_argument,
    add_scorer_arguments,
    check_precision_arguments,
    documents_from_args,
    scoring_settings_from_args,
    summarise,
)
from llm_mia.errors import OutputError
from llm_mia.io.score_files import check_score_output


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


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.score_job import request_estimate_lines, run_score_job

    check_precision_arguments(args)
    output = check_score_output(args.output, overwrite=args.overwrite) if args.output else None
    settings = scoring_settings_from_args(args)
    documents, source = documents_from_args(args)
    if args.dry_run:
        for line in request_estimate_lines(documents, settings, price_per_million_tokens=args.price_per_million_tokens):
            print(line)
        return 0
    job = run_score_job(
        documents,
        settings,
        source=source,
        query_log=None if output is None else f"{output}.queries.jsonl",
        precision_check_size=args.precision_check,
    )
    summarise(job)
    if not job.is_main:
        return 0  # the main process writes the merged rows
    if output is None:
        for line in job.table_lines():
            print(line)
        return 0
    try:
        job.write(output)
    except OutputError as error:
        if settings.cache_path is None:
            raise
        raise OutputError(
            f"{error}; every score is kept in the stats cache, so the same command run again writes them without "
            f"computing them again"
        ) from error
    n_not_ok = job.run.n_not_ok
    print(f"wrote {len(job.rows)} rows to {output} ({n_not_ok} with a non-ok status) and {output}.run.json")
    if job.query_log is not None:
        print(f"every request to the API is logged, hash-chained, in {job.query_log} ({job.query_lines} lines)")
    return 0
