"""SaMIA: sample continuations of each text's first half and count how much of its second half they contain.

examples:
  llm-mia samia                                          # the packaged SmolLM2 on the built-in sample text
  llm-mia samia --input texts.jsonl --samples 10 --output samia.jsonl
  llm-mia samia --input texts.jsonl --model api:gpt-4o-mini --api-base https://api.openai.com/v1 --output s.jsonl

Rows: samia (mean ROUGE-1 recall of the continuations against the true second half; higher = more likely a
member) and samia_zlib, with id, label, group and status as any score file, so `evaluate`, `calibrate` and
`verdict` read them. Every continuation is written beside the rows (<output>.samples.jsonl).
"""

from __future__ import annotations

import argparse

from llm_mia.backends.local import DEFAULT_MODEL
from llm_mia.cli.common import (
    add_api_arguments,
    add_input_arguments,
    api_settings_from_args,
    cache_from_args,
    documents_from_args,
    summarise,
)
from llm_mia.cli.flags import add_flags
from llm_mia.io.score_files import check_score_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="target model (as for score), or api:NAME")
    add_flags(parser, "dtype", "device")
    parser.add_argument("--samples", type=int, default=10, help="continuations per text (default 10, as published)")
    parser.add_argument("--prefix-ratio", type=float, default=0.5, help="share of words given as prefix (0.5)")
    parser.add_argument("--max-new-tokens", type=int, help="tokens per continuation (default: 2 per suffix word + 8)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (each text's own seed derives from it)")
    add_api_arguments(parser)
    add_flags(parser, "no_cache")
    parser.add_argument("--output", help="write rows to this .jsonl or .csv file (default: print a table)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.workflows.samia import SamiaSettings, run_samia

    output = check_score_output(args.output, overwrite=args.overwrite) if args.output else None
    settings = SamiaSettings(
        models=ModelSettings(model=args.model, dtype=args.dtype, device=args.device, api=api_settings_from_args(args)),
        samples=args.samples,
        prefix_ratio=args.prefix_ratio,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        cache=bool(cache_from_args(args)),
    )
    documents, source = documents_from_args(args)
    result = run_samia(documents, settings, source=source)
    if output is None:
        summarise(result)
        return 0
    rows_path, _, samples_path = result.write(output)
    print(f"wrote {len(result.rows)} rows to {rows_path}, the run record and every continuation to {samples_path}")
    return 0
