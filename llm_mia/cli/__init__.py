"""The ``llm-mia`` command: one small module per subcommand, each with ``add_arguments`` and ``run``.

A subcommand parses its arguments, builds the settings of a library workflow (``llm_mia.workflows``; bad input
fails here, before any model loads), calls it and writes what it returns. ``main(argv) -> int`` is what tests
call; ``console_main`` is the installed entry point. Subcommand modules import nothing heavy at the top, so
``llm-mia list`` and ``--help`` start without loading torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from llm_mia.backends.local import library_progress_bars
from llm_mia.cli.failures import INTERNAL_ERROR, INTERRUPTED, USER_ERROR, RunLog, fail

__all__ = ["INTERNAL_ERROR", "INTERRUPTED", "USER_ERROR", "build_parser", "console_main", "main"]

# (subcommand, module under llm_mia.cli, one-line help). Adding a subcommand = one module + one line here.
SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("score", "score", "score documents with membership scorers (one forward pass per model and text variant)"),
    ("dataset-test", "dataset_test", "test whether a whole work was trained on: many passages vs control works"),
    ("synthesize", "synthesize", "synthetic control: a generator tuned on part of a work completes the rest"),
    ("evaluate", "evaluate", "evaluate scorers on a labelled set: AUROC [CI], TPR at low FPR, blind baseline, plots"),
    ("calibrate", "calibrate", "fit a threshold at a target FPR on known non-member scores"),
    ("verdict", "verdict", "per-document p-values and verdicts from a calibration and a score file"),
    ("plan", "plan", "pre-register a dataset-level analysis: models, texts, passages and test fixed by hash"),
    ("evidence", "evidence", "carry out a plan and write a verifiable evidence bundle with a report"),
    ("verify", "verify", "check an evidence bundle: hashes, plan, query log, report, re-scored passages"),
    ("benchmark", "benchmark", "known-split benchmark: build a split, train on the members, score, evaluate, report"),
    ("shadow", "shadow", "shadow models: train K models on random halves, score them, run Shokri, LiRA and RMIA"),
    ("canary", "canary", "canaries: make secret sequences and siblings, plant them, test a model with exact p-values"),
    ("demo", "demo", "first run: fine-tune SmolLM2 on known texts, then find which texts it was trained on"),
    ("decop", "decop", "DE-COP: does the model pick the verbatim passage out of paraphrases, in all 24 orders"),
    ("samia", "samia", "SaMIA: sample continuations of each text's first half, count how much of the rest they hold"),
    ("extract-test", "extract_test", "verbatim extraction: does greedy decoding continue each passage word for word"),
    ("check-backend", "check_backend", "compare a model behind an API with white-box scores of the same weights"),
    ("list", "list_scorers", "list the registered scorers; with --model api:NAME, those that endpoint can serve"),
    ("cache", "cache", "inspect, verify or clear the stats cache that lets killed runs resume"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-mia",
        description="Membership inference for language models: was this text in the model's training data?",
        epilog="Exit status: 0 done; 1 a check failed (benchmark, cache, verify); 2 bad input, settings or "
        "environment (the message says what to change); 3 verify could not run every check; 70 a bug in "
        "llm-mia (the message names the log to report); 130 interrupted.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module(f"llm_mia.cli.{module_name}")
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        # also after the subcommand (llm-mia score --debug); SUPPRESS keeps a --debug given before it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        sub.set_defaults(run=module.run)
    return parser


DEBUG_HELP = "on failure, print the full traceback too (it is always in the log file the error names)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, settings or environment, 70 a bug in llm-mia,
    130 interrupted; some commands use 1 and 3 for a failed or incomplete check). No traceback reaches the
    console unless --debug asks for it: see ``llm_mia.cli.failures``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    resumable = hasattr(args, "cache_dir") and getattr(args, "no_cache", True) is False  # scoring through the cache
    resume_note = (
        " Every finished batch is kept in the stats cache: run the same command again to resume where it stopped, "
        "with the same results."
    )
    progress = not getattr(args, "no_progress", False)
    with RunLog(args.command, argv) as run_log, library_progress_bars(progress):
        try:
            return int(args.run(args))
        except KeyboardInterrupt:
            print(f"\nllm-mia {args.command}: interrupted." + (resume_note if resumable else ""), file=sys.stderr)
            return INTERRUPTED
        except Exception as error:
            return fail(error, command=args.command, run_log=run_log, debug=args.debug)


def console_main() -> None:
    sys.exit(main())
