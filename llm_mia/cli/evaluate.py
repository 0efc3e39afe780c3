"""Evaluate scorers on a labelled set: AUROC [CI], TPR at low FPR with its n, and a blind baseline beside them.

examples:
  llm-mia evaluate --scores scores.jsonl                         # a labelled score file from `llm-mia score`
  llm-mia evaluate --scores scores.jsonl --input texts.jsonl --output-dir eval/
  llm-mia evaluate --model smollm2-135m --input labelled.jsonl --output-dir eval/
  llm-mia evaluate --model ./my-model --input WikiMIA_length32.jsonl --format wikimia --scorers loss zlib min_k
  llm-mia evaluate --model ./my-model --input mimir_arxiv/ --format mimir --save-scores scores.jsonl

With --scores, --scorers picks score columns by name (default: all); with --input it names the scorers to run.
Labels: 1 = member, 0 = non-member; unlabelled rows are ignored. Per scorer, rows with a non-ok status or no
score are excluded and counted. AUROC intervals are DeLong on the logit scale (an exact bound under perfect
separation). TPR@FPR figures show n, the non-members they rest on, and count as resolved only when n x FPR >= 20
(figures below are marked *); their intervals re-choose the threshold in every bootstrap resample. With several
scorers, the best one's p-value is corrected for having been picked (max-T permutation test); with a group
column (the work or source of each document) it permutes the labels of whole groups, since documents of one
work are not independent, and says which unit it permuted (documents when a group holds both labels, with a
warning that the p-value can then be too small).

The blind baseline (a bag-of-words classifier that never sees the model, Das et al. 2024) needs the texts:
they come from --input, or from the input named in the score file's run record when its hash still matches.
It is refitted under permuted labels to calibrate its interval; whenever it separates members from
non-members (permutation p <= 0.05), a warning says the sets differ in distribution and the attack numbers may
measure that difference, however well an attack does.

--output-dir DIR writes evaluation.json (all numbers, settings, and the model / data / scorer identity from
the run record), roc.png/.svg, roc_loglog.png/.svg and histograms.png/.svg.
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
    columns_from_args,
    scoring_settings_from_args,
    write_and_summarise,
)
from llm_mia.errors import LlmMiaError
from llm_mia.io.labelled_sets import FORMATS
from llm_mia.io.outputs import check_output_dir
from llm_mia.io.score_files import check_score_output
from llm_mia.stats.metrics import DEFAULT_FPRS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", help="a labelled score file (.jsonl/.csv) from `llm-mia score`; skips scoring")
    add_input_arguments(  # no built-in default here: evaluation needs labels
        parser,
        input_help="labelled texts to score and evaluate (or, with --scores, the texts for the blind baseline)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="layout of --input: wikimia (input/label), mimir (member/nonmember pairs), generic (text/label "
        "columns) or auto (default: detect from the fields)",
    )
    add_model_arguments(parser)
    add_scorer_arguments(parser)
    add_precision_check_argument(parser)
    group = parser.add_argument_group("evaluation")
    group.add_argument(
        "--fpr",
        type=float,
        nargs="+",
        default=list(DEFAULT_FPRS),
        metavar="FPR",
        help="false-positive rates for TPR@FPR (default: 0.001 0.01 0.05)",
    )
    group.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUROC CI (1000)")
    group.add_argument("--confidence", type=float, default=0.95, help="confidence level of intervals (0.95)")
    group.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the blind baseline folds (0)")
    group.add_argument("--folds", type=int, default=5, help="cross-validation folds of the blind baseline (5)")
    group.add_argument("--no-blind", action="store_true", help="skip the blind baseline")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", help="write evaluation.json and the plots (PNG and SVG) into this directory")
    out.add_argument("--save-scores", help="when scoring, also write the score rows to this .jsonl/.csv file")
    out.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _evaluation_settings(args: argparse.Namespace) -> Any:
    from llm_mia.workflows.evaluate import EvaluationSettings

    return EvaluationSettings(
        fprs=tuple(args.fpr),
        n_bootstrap=args.bootstrap,
        confidence=args.confidence,
        seed=args.seed,
        folds=args.folds,
        blind=not args.no_blind,
        columns=tuple(args.scorers) if args.scores and args.scorers else None,
    )


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.evaluate import EVALUATION_FILE, run_evaluation

    check_precision_arguments(args)
    if args.precision_check is not None and args.scores:
        raise LlmMiaError("--precision-check scores texts in two precisions: give --input, not --scores")
    output_dir = (
        check_output_dir(args.output_dir, overwrite=args.overwrite, owned=[EVALUATION_FILE])
        if args.output_dir
        else None
    )
    settings = _evaluation_settings(args)
    scoring = save = None
    if not args.scores and args.input:
        if args.save_scores:
            save = check_score_output(args.save_scores, overwrite=args.overwrite, option="--save-scores")
        scoring = scoring_settings_from_args(args)
    report = run_evaluation(
        settings,
        scores=args.scores,
        texts=args.input,
        scoring=scoring,
        format=args.format,
        columns=columns_from_args(args),
        split=args.split,
        precision_check=args.precision_check,
    )
    if save is not None:
        report.save_scores(save)
        print(f"wrote {len(report.score_run.rows)} score rows to {save} and {save}.run.json")
    written = write_and_summarise(report, output_dir)
    if output_dir is not None:
        print()
        print(f"wrote {', '.join(p.name for p in written)} to {output_dir}")
    return 0
