"""Dataset-level test: was a whole work (a book, a site, an article collection) in the model's training data?

examples:
  llm-mia dataset-test --suspect my_book/ --control other_books/ --output-dir report/
  llm-mia dataset-test --model ./model --suspect book.md --control after_cutoff.jsonl --control-works group \\
      --output-dir report/ --passage-tokens 256 --scorers loss lowercase min_k:k=0.1,0.2 min_k_plus_plus

The unit of the claim is the work, not the passage. The suspect work (by default everything in --suspect is
one work, whatever the number of files) is compared with control *works*: separate works of the same kind
(other authors' books or articles of the same genre, language, format and era) that the model cannot have
seen, e.g. published after its data cutoff. By default every control file or document is a separate work;
use --control-works group with a group column when several documents belong to one work.

Every passage on both sides has exactly --passage-tokens tokens (the tail of each text that does not fill a
passage is counted and reported, not used), so a work given as one file and controls given as short
documents are cut the same way. Passages are scored in one pass per model and text variant. Scorers that
change with length alone (zlib) are left out.

Design and verdict:
  work-level     >= 19 control works (for alpha 0.05; 1 / (works + 1) is the smallest p): the suspect work is
                 ranked among all works by a statistic computed the same way for every labelling (a
                 non-negative combination of the scores fitted on half of each work's passages; each work's
                 mean on the other half standardised by the spread a work's mean has), so differences between
                 works are in the null. One suspect work enters whole, each control work with up to as many
                 passages (--passage-selection). "consistent with training on this work" at p <= alpha:
                 false-positive rate <= alpha per work if, untrained, the work would be like the control works.
  passage-level  fewer control works, or one control source: the passage-level test of Maini et al. 2024 is
                 reported, but between-work differences are not controlled, so a significant result is
                 "inconclusive", never "consistent with training".
Statistic: the target's scores, or with --reference each score minus the same score under a model that cannot
have seen the work (--statistic reference-gap, the default then): for control works of another era, author or
format, the verdict then assumes only that the two models react alike to that difference.
Safeguards that withhold the verdict, run on the passages the test reads: without the model, is the suspect text
more different from the control works than they are from each other (wording, shared vocabulary; several
suspect works: a bag-of-words classifier over whole works); format (bytes per word, compressibility); equal
passage lengths; comparable work sizes (several suspect works); a negative control with the main test's
structure (the first half of the control works against the second). With the reference gap the text checks are
reported only. "Not distinguishable" comes with the effect the test could have detected; it is not evidence that
the work was not trained on.

Later chapters of the same book, paraphrases of the work, or post-cutoff text of another genre are not valid
control works: they differ from the work in ways the test would report as training (Das et al. 2024; Zhao et
al. 2025).

Output (--output-dir): report.json (everything), summary.md, work_test.png or p_value_curve.png,
scores.jsonl (+ .run.json) and passages.jsonl (file, work and character offsets of every passage).
"""

from __future__ import annotations

import argparse
from typing import Any

from llm_mia.cli.common import (
    add_model_arguments,
    add_scorer_arguments,
    scoring_settings_from_args,
    write_and_summarise,
)
from llm_mia.errors import LlmMiaError
from llm_mia.io.outputs import check_output_dir
from llm_mia.io.passages import DEFAULT_PASSAGE_TOKENS, WORK_UNITS
from llm_mia.stats.dataset_inference import DEFAULT_ALPHA
from llm_mia.stats.passage_test import DEFAULT_CLIP_QUANTILE, DEFAULT_SPLITS
from llm_mia.stats.work_test import DEFAULT_PERMUTATIONS, SELECTION_RULES, WHOLE_SUSPECT
from llm_mia.workflows.dataset import STATISTIC_CHOICES


def add_test_arguments(parser: argparse.ArgumentParser) -> None:
    """The texts, models, scorers and test settings of a dataset-level test (shared with `llm-mia plan`)."""
    group = parser.add_argument_group("texts")
    group.add_argument("--suspect", required=True, help="the work to test: a text file, directory, or .jsonl/...")
    group.add_argument(
        "--control",
        help="control works the model cannot have seen, of the same kind (see above for what qualifies); "
        "or --synthetic-control when there are none",
    )
    group.add_argument(
        "--suspect-works",
        choices=WORK_UNITS,
        default="one",
        help="the suspect input is one work (default), a work per file/document (sources) or per group column",
    )
    group.add_argument(
        "--control-works",
        choices=WORK_UNITS,
        default="sources",
        help="each control file/document is a separate work (sources, default), or works by group column, or one",
    )
    group.add_argument(
        "--passage-tokens",
        type=int,
        default=DEFAULT_PASSAGE_TOKENS,
        help=f"tokens in every passage, suspect and control alike (default: {DEFAULT_PASSAGE_TOKENS}); tails "
        f"shorter than that are reported and not used",
    )
    group.add_argument(
        "--passage-stride",
        type=int,
        help="tokens between passage starts (default: the passage length, no overlap; overlapping passages "
        "are not independent)",
    )
    group.add_argument(
        "--tokenizer",
        help="for --model api:NAME (whose tokenizer is unknown): the local model whose tokenizer cuts the passages",
    )
    add_model_arguments(parser)
    add_scorer_arguments(parser)
    test = parser.add_argument_group("test")
    test.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="significance level (default: 0.05)")
    test.add_argument(
        "--splits", type=int, default=DEFAULT_SPLITS, help=f"random half-splits (default: {DEFAULT_SPLITS})"
    )
    test.add_argument(
        "--permutations",
        type=int,
        default=DEFAULT_PERMUTATIONS,
        help=f"random labellings of the works when they are too many to enumerate (default: {DEFAULT_PERMUTATIONS})",
    )
    test.add_argument(
        "--clip-quantile",
        type=float,
        default=DEFAULT_CLIP_QUANTILE,
        help="clip each feature to this and 1 minus this quantile of the training half (default: 0.025)",
    )
    test.add_argument(
        "--statistic",
        choices=STATISTIC_CHOICES,
        default="auto",
        help="scores: the target's membership scores; reference-gap: each score minus the same score under "
        "--reference (for control works of another era, author or format: the verdict then assumes the two models "
        "react alike to that difference); auto (default): reference-gap when --reference is given",
    )
    test.add_argument(
        "--passage-selection",
        choices=SELECTION_RULES,
        default=WHOLE_SUSPECT,
        help="one suspect work: whole-suspect (default) tests all its passages, each control work with up to as "
        "many (conservative when control works are shorter); common-size gives every work its first c passages "
        "(exact, but a long work is tested on its start only)",
    )
    test.add_argument("--seed", type=int, default=0, help="seed of the half-splits and the model-free checks")


def settings_from_args(args: argparse.Namespace) -> Any:
    """The ``DatasetTestSettings`` the arguments name, validated before any model loads."""
    from llm_mia.workflows.dataset import DatasetTestSettings

    return DatasetTestSettings(
        scoring=scoring_settings_from_args(args),
        suspect_works=args.suspect_works,
        control_works=args.control_works,
        permutations=args.permutations,
        passage_tokens=args.passage_tokens,
        passage_stride=args.passage_stride,
        alpha=args.alpha,
        splits=args.splits,
        clip_quantile=args.clip_quantile,
        seed=args.seed,
        tokenizer=args.tokenizer,
        statistic=args.statistic,
        passage_selection=args.passage_selection,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llm_mia.cli.synthesize import add_synthesis_arguments

    add_test_arguments(parser)
    synthetic = parser.add_argument_group("synthetic control (no unseen text of the work's kind: Zhao et al. 2025)")
    synthetic.add_argument(
        "--synthetic-control",
        action="store_true",
        help="test the work against text a generator fine-tuned on its other part wrote (llm-mia synthesize)",
    )
    synthetic.add_argument("--synthetic", help="a set written by `llm-mia synthesize` (default: make one now)")
    synthetic.add_argument("--calibration-runs", type=int, default=10, help="random splits of the pairs (10)")
    add_synthesis_arguments(synthetic)
    output = parser.add_argument_group("output")
    output.add_argument("--output-dir", required=True, help="directory for the report (created if missing)")
    output.add_argument("--overwrite", action="store_true", help="replace report files already in --output-dir")


def run_synthetic(args: argparse.Namespace) -> int:
    """``--synthetic-control``: the calibrated test against a synthetic held-out set (llm_mia.workflows.synthetic)."""
    from llm_mia.cli.synthesize import synthesis_settings
    from llm_mia.workflows.synthetic import DEFAULT_SCORERS, OUTPUT_FILES, SyntheticTestSettings, run_synthetic_test

    if args.control:
        raise LlmMiaError("give --control (real control works) or --synthetic-control, not both")
    scorers = args.scorers or list(DEFAULT_SCORERS)
    settings = SyntheticTestSettings(
        scoring=scoring_settings_from_args(argparse.Namespace(**{**vars(args), "scorers": scorers})),
        synthesis=synthesis_settings(args),
        alpha=args.alpha,
        runs=args.calibration_runs,
        seed=args.seed,
    )
    output_dir = check_output_dir(args.output_dir, overwrite=args.overwrite, owned=OUTPUT_FILES)
    report = run_synthetic_test(args.suspect, settings, synthetic=args.synthetic, progress=not args.no_progress)
    written = write_and_summarise(report, output_dir)
    print(f"wrote {', '.join(p.name for p in written)} to {output_dir}")
    return 0


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.dataset import OUTPUT_FILES, run_dataset_test

    if args.synthetic_control:
        return run_synthetic(args)
    if not args.control:
        raise LlmMiaError("give --control (control works the model cannot have seen) or --synthetic-control")
    settings = settings_from_args(args)
    output_dir = check_output_dir(args.output_dir, overwrite=args.overwrite, owned=OUTPUT_FILES)
    report = run_dataset_test(args.suspect, args.control, settings)
    if not report.is_main:
        return 0  # the main process writes the report
    written = write_and_summarise(report, output_dir)
    print(f"wrote {', '.join(p.name for p in written)} to {output_dir}")
    return 0
