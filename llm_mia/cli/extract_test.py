"""Verbatim extraction: given each passage's first k tokens, does the model continue it word for word?

examples:
  llm-mia extract-test                                  # the packaged SmolLM2 on the built-in sample (no verdict)
  llm-mia extract-test --suspect my_book.txt --control other_books/ --reference ./older-model --output-dir out/
  llm-mia extract-test --suspect book.txt --control others/ --model api:gpt-4o-mini --api-base \\
      https://api.openai.com/v1 --tokenizer smollm2-135m --api-mode chat --dry-run

Every passage (cut as dataset-test cuts them, k + L tokens each) is given its first k tokens (--prefix-tokens,
50) and greedily continued for L (--target-tokens, 50), as Carlini et al. 2023 define discoverable memorization;
each continuation's exact-match length (tokens before the first mismatch), longest common token run and
exactness are recorded with the generated tokens. A passage counts as extracted at a match of at least
--min-match tokens (default L: the exact continuation).

Chance check (--reference, a model that cannot have seen the work): the same probes under it; passages it
also continues for at least --formulaic-tokens tokens (default m / 2) are formulaic (a licence, boilerplate,
a quotation everybody repeats), reported apart and left out of every claim.

Verdict (with --control): the passages' match features go into dataset-test's work-level permutation test
(>= 19 control works for alpha 0.05), with its safeguards and wording: "consistent with training on this work"
at p <= alpha, false-positive rate at most alpha per work if, untrained, the work would be like the control
works. Beside it, per passage: the passages extracted verbatim (offsets and text), and how often the target
does the same on the control works (exact interval).

Models behind an API: the prefix is sent as text (a completion prompt, or with --api-mode chat a stated
instruction: "continue the text exactly"); temperature 0, or where an endpoint refuses it --temperature T
--samples N (the best of N continuations kept). --dry-run prints the requests and tokens before any is sent.
Without --suspect: probe --input (or the built-in sample, with k = 10 and L = 16 unless given: its texts are
26 to 67 tokens) passage by passage, with no verdict.

Output: --output-dir with report.json, summary.md, extraction.jsonl (every passage's prefix, true and generated
continuation, tokens and numbers; + .run.json), passages.jsonl, match_lengths.png, work_test.png; without
--suspect, --output FILE (rows) or a table.
"""

from __future__ import annotations

import argparse
from typing import Any

from llm_mia.backends.local import DEFAULT_MODEL
from llm_mia.cli.common import (
    add_api_arguments,
    add_input_arguments,
    api_settings_from_args,
    documents_from_args,
    write_and_summarise,
)
from llm_mia.cli.flags import add_flags
from llm_mia.errors import LlmMiaError
from llm_mia.io.passages import WORK_UNITS
from llm_mia.methods.continuation_api import API_MODES
from llm_mia.methods.extraction import DEFAULT_PREFIX_TOKENS, DEFAULT_TARGET_TOKENS
from llm_mia.stats.dataset_inference import DEFAULT_ALPHA, REFERENCE_GAP, SCORES
from llm_mia.stats.passage_test import DEFAULT_SPLITS
from llm_mia.stats.work_test import DEFAULT_PERMUTATIONS, SELECTION_RULES, WHOLE_SUSPECT

SAMPLE_PREFIX_TOKENS, SAMPLE_TARGET_TOKENS = 10, 16  # the built-in sample's texts are 26-67 SmolLM2 tokens


def add_probe_arguments(parser: argparse.ArgumentParser) -> None:
    """k, L, m, the formulaic threshold, decoding and how an API is asked (shared with `llm-mia plan`)."""
    group = parser.add_argument_group("extraction probes")
    group.add_argument(
        "--prefix-tokens", type=int, help=f"k: tokens given as the prompt (default {DEFAULT_PREFIX_TOKENS})"
    )
    group.add_argument(
        "--target-tokens",
        type=int,
        help=f"L: tokens of the true continuation compared (default {DEFAULT_TARGET_TOKENS})",
    )
    group.add_argument("--min-match", type=int, help="m: exact-match tokens that count as extracted (default L)")
    group.add_argument(
        "--formulaic-tokens",
        type=int,
        help="a passage whose reference continuation matches this many tokens is formulaic (default m / 2)",
    )
    group.add_argument("--samples", type=int, default=1, help="continuations per passage (needs --temperature > 0)")
    group.add_argument(
        "--temperature", type=float, default=0.0, help="0 (default): greedy; > 0: sample, keep the best continuation"
    )
    group.add_argument(
        "--api-mode",
        choices=API_MODES,
        default="auto",
        help="for api: models, completions (the prefix as prompt) or chat (after a stated instruction); auto: "
        "completions where served",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    texts = parser.add_argument_group("texts")
    texts.add_argument("--suspect", help="the work to test (file, directory, .jsonl ...); omit to probe --input")
    texts.add_argument("--control", help="control works the model cannot have seen, of the same kind (dataset-test)")
    texts.add_argument("--suspect-works", choices=WORK_UNITS, default="one", help="as dataset-test (default one)")
    texts.add_argument("--control-works", choices=WORK_UNITS, default="sources", help="as dataset-test (sources)")
    texts.add_argument("--tokenizer", help="for --model api:NAME: the local model whose tokenizer cuts passages")
    add_input_arguments(parser)
    models = parser.add_argument_group("models")
    models.add_argument("--model", default=DEFAULT_MODEL, help="target model (as for score), or api:NAME")
    models.add_argument("--reference", help="chance check: a model that cannot have seen the work (or api:NAME)")
    add_flags(models, "dtype", "device", "batch_size", "cache_dir", "no_cache", "no_progress")
    add_api_arguments(parser)
    add_probe_arguments(parser)
    test = parser.add_argument_group("test (as dataset-test)")
    test.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="significance level (0.05)")
    test.add_argument("--splits", type=int, default=DEFAULT_SPLITS, help="random half-splits (10)")
    test.add_argument("--permutations", type=int, default=DEFAULT_PERMUTATIONS, help="random labellings (999)")
    test.add_argument("--statistic", choices=(SCORES, REFERENCE_GAP), default=SCORES, help="scores or reference-gap")
    test.add_argument("--passage-selection", choices=SELECTION_RULES, default=WHOLE_SUSPECT, help="as dataset-test")
    test.add_argument("--seed", type=int, default=0, help="seed of the splits, checks and sampling")
    output = parser.add_argument_group("output")
    output.add_argument("--output-dir", help="directory for the report (with --suspect)")
    output.add_argument("--output", help="rows to this .jsonl or .csv file (without --suspect; default: a table)")
    output.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    output.add_argument(
        "--dry-run", action="store_true", help="count the requests and tokens an API would get; send none"
    )
    output.add_argument("--price-per-million-tokens", type=float, help="with --dry-run: the cost at this price")


def probe_settings_from_args(args: argparse.Namespace, *, sample: bool = False) -> Any:
    from llm_mia.methods.extraction import ProbeSettings

    default_k, default_l = (
        (SAMPLE_PREFIX_TOKENS, SAMPLE_TARGET_TOKENS) if sample else (DEFAULT_PREFIX_TOKENS, DEFAULT_TARGET_TOKENS)
    )
    return ProbeSettings(
        prefix_tokens=default_k if args.prefix_tokens is None else args.prefix_tokens,
        target_tokens=default_l if args.target_tokens is None else args.target_tokens,
        min_match=args.min_match,
        formulaic_tokens=args.formulaic_tokens,
    )


def settings_from_args(args: argparse.Namespace, *, sample: bool = False) -> Any:
    """The ``ExtractionTestSettings`` the arguments name, validated before any model loads."""
    from pathlib import Path

    from llm_mia.backends.loading import ModelSettings
    from llm_mia.workflows.extraction import ExtractionTestSettings

    cache: bool | Path = (
        False if args.no_cache else Path(args.cache_dir) / "tokenstats.sqlite" if args.cache_dir else True
    )
    return ExtractionTestSettings(
        models=ModelSettings(
            model=args.model,
            reference=args.reference,
            dtype=args.dtype,
            device=args.device,
            api=api_settings_from_args(args),
        ),
        probe=probe_settings_from_args(args, sample=sample),
        samples=args.samples,
        temperature=args.temperature,
        api_mode=args.api_mode,
        suspect_works=args.suspect_works,
        control_works=args.control_works,
        alpha=args.alpha,
        splits=args.splits,
        permutations=args.permutations,
        seed=args.seed,
        statistic=args.statistic,
        passage_selection=args.passage_selection,
        tokenizer=args.tokenizer,
        batch_size=args.batch_size,
        cache=cache,
        progress=not args.no_progress,
    )


def plan_extraction(args: argparse.Namespace) -> int:
    """``llm-mia plan --analysis extraction``: the plan's arguments (dataset-test's) as extraction settings,
    refusing those an extraction analysis does not use, then the plan (``llm_mia.workflows.extraction_evidence``)."""
    from pathlib import Path

    from llm_mia.backends.loading import ModelSettings
    from llm_mia.io.outputs import check_output_file
    from llm_mia.io.passages import DEFAULT_PASSAGE_TOKENS
    from llm_mia.workflows.extraction import ExtractionTestSettings
    from llm_mia.workflows.extraction_evidence import build_extraction_plan
    from llm_mia.workflows.plan import PlannedAnalysis

    if args.scorers:
        raise LlmMiaError("--scorers are for a dataset-test plan; an extraction plan measures greedy continuations")
    if args.passage_tokens != DEFAULT_PASSAGE_TOKENS or args.passage_stride is not None:
        raise LlmMiaError(
            "an extraction plan cuts passages of k + L tokens: give --prefix-tokens and --target-tokens instead of "
            "--passage-tokens / --passage-stride"
        )
    if args.batch_size == "auto":
        raise LlmMiaError("--batch-size auto is for scoring; give greedy decoding a number of prompts (8)")
    if args.dtype != "float32" or args.precision_check is not None:
        raise LlmMiaError(
            "an extraction plan decodes in float32: a lower precision can change which token is the argmax, and "
            "verify --rescore requires the same tokens; leave out --dtype / --precision-check"
        )
    cache: bool | Path = (
        False if args.no_cache else Path(args.cache_dir) / "tokenstats.sqlite" if args.cache_dir else True
    )
    settings = ExtractionTestSettings(
        models=ModelSettings(
            model=args.model,
            revision=args.revision,
            reference=args.reference,
            reference_revision=args.reference_revision,
            dtype=args.dtype,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
            api=api_settings_from_args(args),
        ),
        probe=probe_settings_from_args(args),
        samples=args.samples,
        temperature=args.temperature,
        api_mode=args.api_mode,
        suspect_works=args.suspect_works,
        control_works=args.control_works,
        alpha=args.alpha,
        splits=args.splits,
        permutations=args.permutations,
        seed=args.seed,
        statistic=REFERENCE_GAP if args.statistic == REFERENCE_GAP else SCORES,
        passage_selection=args.passage_selection,
        tokenizer=args.tokenizer,
        batch_size=args.batch_size,
        cache=cache,
    )
    output = check_output_file(args.output, overwrite=args.overwrite, suffixes=(".json",))
    plan = build_extraction_plan(
        args.suspect,
        args.control,
        settings,
        question=args.question,
        analyst=args.analyst,
        control_rationale=args.control_rationale,
    )
    path, sidecar = write_and_summarise(PlannedAnalysis(plan), output)
    print(f"wrote {path} and {sidecar}; keep the hash somewhere the other side can see it was fixed first")
    return 0


def run(args: argparse.Namespace) -> int:
    from llm_mia.io.outputs import check_output_dir
    from llm_mia.io.score_files import check_score_output
    from llm_mia.workflows.extraction import OUTPUT_FILES, run_extraction_probe, run_extraction_test

    if args.suspect and not args.control:
        raise LlmMiaError(
            "--suspect needs --control: a verdict ranks the work among control works the model cannot have seen; to "
            "probe texts without a verdict, give them with --input instead"
        )
    if args.control and not args.suspect:
        raise LlmMiaError("--control needs --suspect, the work to test")
    if args.suspect and args.input:
        raise LlmMiaError("give --suspect and --control (a test), or --input (probes without a verdict), not both")
    settings = settings_from_args(args, sample=not args.suspect and not args.input)
    if args.dry_run:
        from llm_mia.workflows.extraction import request_estimate_lines

        documents = [] if args.suspect else documents_from_args(args)[0]
        for line in request_estimate_lines(
            settings,
            suspect=args.suspect,
            control=args.control,
            documents=documents,
            price_per_million_tokens=args.price_per_million_tokens,
        ):
            print(line)
        return 0
    if args.suspect:
        if not args.output_dir:
            raise LlmMiaError("--suspect needs --output-dir: the directory for the report")
        output_dir = check_output_dir(args.output_dir, overwrite=args.overwrite, owned=OUTPUT_FILES)
        report = run_extraction_test(args.suspect, args.control, settings)
        written = write_and_summarise(report, output_dir)
        print(f"wrote {', '.join(p.name for p in written)} to {output_dir}")
        return 0
    output = check_score_output(args.output, overwrite=args.overwrite) if args.output else None
    documents, source = documents_from_args(args)
    result = run_extraction_probe(documents, settings, source=source)
    if output is None:
        for line in result.table_lines():
            print(line)
    written = write_and_summarise(result, output)
    if written:
        print(f"wrote {len(result.rows)} rows to {written[0]} and its run record")
    return 0
