"""Dataset-level test: was a whole work (a book, an article collection) in the model's training data?

examples:
  llm-mia dataset-test --suspect my_book/ --control my_later_chapters/ --output-dir report/
  llm-mia dataset-test --model ./model --suspect book.md --control after_cutoff.jsonl --output-dir report/ \\
      --passage-tokens 256 --scorers loss zlib lowercase min_k:k=0.1,0.2 min_k_plus_plus --splits 20

The suspect work and the control texts are cut into passages of --passage-tokens tokens (each traceable to
its file and character offsets), every passage is scored by several scorers in one extraction pass per model
and text variant, and the scores are aggregated as in Maini et al. 2024 ("LLM Dataset Inference"): outliers
clipped, features standardised, a non-negative linear combination learned on one half of the passages, and a
one-sided Welch t-test on the other half (suspect passages score higher?). This is repeated over --splits
random half-splits and their p-values are combined as min(1, 2 x median) (Meinshausen et al. 2009). A
negative control runs in the same pass: the control passages split in two and tested against each other. If
it rejects, the verdict is withheld.

The control set decides what the result means. It must be text the model cannot have seen, of the same kind
as the suspect work. Ways to build one:
  - held-out chapters or articles written after the model was trained (same author, same style);
  - text of the same genre published after the model's training-data cutoff;
  - paraphrases of the suspect work (same content in new words; a model that saw the original prefers it).
Do not use a different genre, language or era: the test would detect that difference instead.

Inputs: a .txt or .md file, a directory of them (one source per file), or a .jsonl/.json/.csv/.parquet file
(one source per document). Controls from several sources make the negative control stronger: it then splits
whole sources, the way suspect and control differ.

Scores are kept in the stats cache (--cache-dir, --no-cache), so a second test on the same passages with
other --splits, --alpha or controls reuses them instead of running the model again.

Output (--output-dir): report.json (everything, per split), summary.md, p_value_curve.png (p-value against
the number of passages), scores.jsonl (+ .run.json: models, scorers, settings, input hashes) and
passages.jsonl (source file and character offsets of every passage). The verdict reads "consistent with
training on these texts" or "not distinguishable from unseen text"; a statistical test never proves training.
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import add_model_arguments, add_scorer_arguments, scoring_settings_from_args
from llm_mia.dataset_inference import DEFAULT_ALPHA, DEFAULT_CLIP_QUANTILE, DEFAULT_SPLITS
from llm_mia.outputs import check_output_dir
from llm_mia.passages import DEFAULT_PASSAGE_TOKENS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("texts")
    group.add_argument("--suspect", required=True, help="the work to test: a text file, directory, or .jsonl/...")
    group.add_argument(
        "--control",
        required=True,
        help="text the model cannot have seen, of the same kind (see above for what qualifies)",
    )
    group.add_argument(
        "--passage-tokens",
        type=int,
        default=DEFAULT_PASSAGE_TOKENS,
        help=f"passage length in target-model tokens (default: {DEFAULT_PASSAGE_TOKENS}); passages longer than "
        f"the model's context are scored in windows, never truncated",
    )
    group.add_argument(
        "--passage-stride",
        type=int,
        help="tokens between passage starts (default: the passage length, no overlap; overlapping passages "
        "are not independent and make the t-test over-confident)",
    )
    add_model_arguments(parser)
    add_scorer_arguments(parser)
    test = parser.add_argument_group("test")
    test.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="significance level (default: 0.05)")
    test.add_argument(
        "--splits", type=int, default=DEFAULT_SPLITS, help=f"random half-splits (default: {DEFAULT_SPLITS})"
    )
    test.add_argument(
        "--clip-quantile",
        type=float,
        default=DEFAULT_CLIP_QUANTILE,
        help="clip each feature to this and 1 minus this quantile of the training half (default: 0.025)",
    )
    test.add_argument("--seed", type=int, default=0, help="seed of the half-splits and the blind baseline folds")
    output = parser.add_argument_group("output")
    output.add_argument("--output-dir", required=True, help="directory for the report (created if missing)")
    output.add_argument("--overwrite", action="store_true", help="replace report files already in --output-dir")


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.dataset import OUTPUT_FILES, DatasetTestSettings, run_dataset_test

    settings = DatasetTestSettings(
        scoring=scoring_settings_from_args(args),
        passage_tokens=args.passage_tokens,
        passage_stride=args.passage_stride,
        alpha=args.alpha,
        splits=args.splits,
        clip_quantile=args.clip_quantile,
        seed=args.seed,
    )
    output_dir = check_output_dir(args.output_dir, overwrite=args.overwrite, owned=OUTPUT_FILES)
    report = run_dataset_test(args.suspect, args.control, settings)
    if not report.is_main:
        return 0  # the main process writes the report
    written = report.write(output_dir)
    for line in report.summary_lines():
        print(line)
    print(f"wrote {', '.join(p.name for p in written)} to {output_dir}")
    return 0
