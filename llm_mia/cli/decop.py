"""DE-COP: ask the model which of four options is the verbatim passage, in all 24 orders (higher = more likely seen).

examples:
  llm-mia decop --input quiz.jsonl --subject 'the "Cymbeline" play by William Shakespeare' --output decop.jsonl
  llm-mia decop --input quiz.jsonl --subject '...' --model api:gpt-4o-mini --api-base https://api.openai.com/v1

quiz.jsonl: one passage per line, {"id", "text", "paraphrases": [three paraphrases], "label"?, "group"?};
--paraphrase-model MODEL --paraphrases-out quiz-with-paraphrases.jsonl has a model write missing ones. The rows
written (decop = mean probability of the verbatim option over the 24 orders, chance 0.25; decop_accuracy) are a
score file: compare works with `llm-mia evaluate` or calibrate on control passages paraphrased the same way; a
score above 0.25 alone is not evidence of training (paraphrases are often less fluent than the original).
"""

from __future__ import annotations

import argparse

from llm_mia.backends.local import DEFAULT_MODEL
from llm_mia.cli.common import add_api_arguments, api_settings_from_args, cache_from_args
from llm_mia.cli.flags import add_flags
from llm_mia.io.outputs import check_output_file
from llm_mia.io.score_files import check_score_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="JSONL of passages with their three paraphrases")
    parser.add_argument(
        "--subject", required=True, help='how the question names the work: the "Emma" book by Jane Austen'
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="target model (as for score), or api:NAME")
    add_flags(parser, "dtype", "device", "batch_size")
    add_api_arguments(parser)
    add_flags(parser, "no_cache")
    parser.add_argument(
        "--paraphrase-model",
        help="write the paraphrases of passages that have none with this model (local, or api:NAME at --api-base)",
    )
    parser.add_argument(
        "--paraphrases-out",
        help="with --paraphrase-model: the quiz file to write (passages with their paraphrases), kept for reruns",
    )
    parser.add_argument("--output", required=True, help="write rows to this .jsonl or .csv file")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.errors import LlmMiaError
    from llm_mia.workflows.decop import DecopSettings, run_decop_quiz

    output = check_score_output(args.output, overwrite=args.overwrite)
    settings = DecopSettings(
        subject=args.subject,
        models=ModelSettings(model=args.model, dtype=args.dtype, device=args.device, api=api_settings_from_args(args)),
        batch_size=args.batch_size,
        cache=bool(cache_from_args(args)),
    )
    quiz_out = None
    if args.paraphrase_model:
        if not args.paraphrases_out:
            raise LlmMiaError("--paraphrase-model needs --paraphrases-out: the paraphrases are kept with the run")
        quiz_out = check_output_file(
            args.paraphrases_out, overwrite=args.overwrite, suffixes=(".jsonl",), option="--paraphrases-out"
        )
    result = run_decop_quiz(
        args.input, settings, paraphrase_model=args.paraphrase_model, paraphrases_out=quiz_out, echo=print
    )
    result.write(output)
    print(f"wrote {len(result.rows)} rows to {output} and {output}.run.json; " + "; ".join(result.summary_lines()))
    return 0
