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
import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

from llm_mia.blind import BlindBaselineResult, blind_baseline
from llm_mia.cli.common import (
    add_model_arguments,
    add_scorer_arguments,
    cache_from_args,
    load_models_from_args,
    scorer_calls_from_args,
    settings_from_args,
)
from llm_mia.dataset_test import (
    COMBINATION,
    CONTROL_ASSUMPTION,
    DEFAULT_ALPHA,
    DEFAULT_CLIP_QUANTILE,
    DEFAULT_SPLITS,
    MIN_PASSAGES_PER_SET,
    DatasetInferenceResult,
    dataset_inference,
    format_p,
    verdict_sentence,
)
from llm_mia.errors import LlmMiaError
from llm_mia.passages import DEFAULT_PASSAGE_TOKENS, Passage, Source, check_passage_settings, passages_from_sources
from llm_mia.passages import read_sources as read_work
from llm_mia.results import json_ready, sha256_documents, write_rows, write_run_record
from llm_mia.scoring import extract_views, needed_views, score_rows

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("report.json", "summary.md", "p_value_curve.png", "scores.jsonl", "passages.jsonl")
BLIND_FOLDS = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("texts")
    group.add_argument("--suspect", required=True, help="the work to test: .txt/.md file, directory, or .jsonl/...")
    group.add_argument(
        "--control",
        required=True,
        help="text the model cannot have seen, of the same kind (later chapters, post-cutoff text, paraphrases)",
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


def _check_output_dir(path: str, *, overwrite: bool) -> Path:
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise LlmMiaError(f"--output-dir {directory} is a file; pass a directory")
    existing = [name for name in OUTPUT_FILES if (directory / name).exists()]
    if existing and not overwrite:
        raise LlmMiaError(
            f"--output-dir {directory} already holds {', '.join(existing)}; pass --overwrite to replace them, "
            f"or choose another directory"
        )
    return directory


def _check_test_arguments(args: argparse.Namespace) -> None:
    if not 0.0 < args.alpha < 1.0:
        raise LlmMiaError(f"--alpha {args.alpha} is not in (0, 1); 0.05 is the usual choice")
    if args.splits < 1:
        raise LlmMiaError(f"--splits {args.splits} must be >= 1; 10 is a good default")
    if not 0.0 <= args.clip_quantile < 0.5:
        raise LlmMiaError(f"--clip-quantile {args.clip_quantile} is not in [0, 0.5); 0.025 clips 2.5% per side")
    check_passage_settings(passage_tokens=args.passage_tokens, stride=args.passage_stride)


def _features(rows: list[dict[str, Any]], columns: list[str]) -> tuple[list[list[float]], list[int], Counter]:
    """Feature rows of passages with every score present; indices kept; why the others were left out."""
    kept, indices, excluded = [], [], Counter()
    for index, row in enumerate(rows):
        values = [row[c] for c in columns]
        if row["status"] == "ok" and all(v is not None and math.isfinite(v) for v in values):
            kept.append(values)
            indices.append(index)
        else:
            excluded[row["status"]] += 1
    return kept, indices, excluded


def _blind(
    suspect: list[Passage],
    control: list[Passage],
    suspect_sources: list[Source],
    control_sources: list[Source],
    seed: int,
) -> tuple[BlindBaselineResult | None, str]:
    """Blind baseline on whole sources when each side has enough of them, else on passages (with why)."""
    if len(suspect_sources) >= BLIND_FOLDS and len(control_sources) >= BLIND_FOLDS:
        texts = ([s.text for s in suspect_sources], [s.text for s in control_sources])
        unit = "whole sources (so no source sits on both sides of a cross-validation fold)"
    else:
        texts = ([p.text for p in suspect], [p.text for p in control])
        unit = (
            f"passages (fewer than {BLIND_FOLDS} sources on a side; words specific to one source can make "
            f"the sets look more different than they are)"
        )
    try:
        return blind_baseline(*texts, folds=BLIND_FOLDS, seed=seed), unit
    except LlmMiaError as error:
        return None, f"not run: {error}"


def plot_curve(result: DatasetInferenceResult, path: Path) -> Path:
    """p-value (log scale) against the number of suspect passages, with the split range and alpha."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = result.curve
    x = [p.n_suspect for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    floor = 1e-300  # log axis: a p-value that underflows to 0 is drawn at the floor
    ax.fill_between(
        x,
        [max(p.p_min, floor) for p in points],
        [max(p.p_max, floor) for p in points],
        alpha=0.25,
        label="range over half-splits",
    )
    ax.plot(x, [max(p.p_value, floor) for p in points], marker="o", label="combined p (2 x median)")
    ax.axhline(result.alpha, color="red", linestyle="--", label=f"alpha = {result.alpha:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 20, not 2 x 10^1
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("suspect passages (control passages in proportion)")
    ax.set_ylabel("p-value (one-sided Welch t-test)")
    ax.set_title("Dataset inference: p-value vs number of passages")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _spread(values: dict[str, float], fmt: Any = format_p) -> str:
    return f"median {fmt(values['median'])}, range {fmt(values['min'])} to {fmt(values['max'])}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The printed summary (also the top of summary.md)."""
    inference, passages = report["result"], report["passages"]
    main, control = inference["main"], inference["negative_control"]
    d = main["effect_size_cohens_d"]
    lines = [
        f"dataset test: {main['n_suspect']} suspect passages ({passages['suspect']['sources']} sources) vs "
        f"{main['n_control']} control passages ({passages['control']['sources']} sources), "
        f"{passages['passage_tokens']} tokens each, model {report['models']['target']['name']}",
        f"features: {', '.join(report['features'])}",
        f"test: {inference['test']}; {COMBINATION}",
        f"main test:        p = {format_p(main['p_value'])} over {main['splits']} half-splits "
        f"(split p {_spread(main['p_value_spread'])}); Cohen's d {d['median']:.3f} "
        f"[{d['min']:.3f}, {d['max']:.3f}]; AUROC of the combined score {main['auroc_median']:.3f}",
        f"negative control: p = {format_p(control['p_value'])} (control vs control, {control['note']})",
    ]
    blind = report["blind_baseline"]
    if blind["result"] is None:
        lines.append(f"blind baseline:   {blind['unit']}")
    else:
        low, high = blind["result"]["auroc_ci"]
        lines.append(
            f"blind baseline:   AUROC {blind['result']['auroc']:.3f} [{low:.3f}, {high:.3f}] (bag-of-words "
            f"classifier that never sees the model, on {blind['unit']})"
        )
        if blind["result"]["warning"]:
            lines.append(blind["result"]["warning"])
    for name in ("suspect", "control"):
        if passages[name]["excluded"]:
            reasons = "; ".join(f"{count} x {why}" for why, count in passages[name]["excluded"].items())
            lines.append(f"left out of the test ({name}): {reasons}")
    lines.append(f"assumption: {CONTROL_ASSUMPTION}")
    lines.append(f"verdict: {report['verdict_sentence']}")
    return lines


def _markdown(report: dict[str, Any]) -> str:
    inference = report["result"]
    rows = [
        "| passages (suspect) | passages (control) | combined p | median split p | p range |",
        "|---:|---:|---:|---:|---|",
    ]
    for point in inference["p_value_curve"]:
        rows.append(
            f"| {point['n_suspect']} | {point['n_control']} | {format_p(point['p_value'])} | "
            f"{format_p(point['p_median'])} | {format_p(point['p_min'])} to {format_p(point['p_max'])} |"
        )
    weights = inference["main"]["median_weights"]
    weight_rows = ["| feature | median weight (standardised) |", "|---|---:|"]
    weight_rows += [f"| {name} | {value:.4f} |" for name, value in weights.items()]
    return "\n".join(
        [
            "# Dataset-level membership test",
            "",
            f"**Verdict:** {report['verdict_sentence']}",
            "",
            "```",
            *summary_lines(report),
            "```",
            "",
            "## p-value against the number of passages",
            "",
            "![p-value curve](p_value_curve.png)",
            "",
            *rows,
            "",
            "## Weights of the combined score (main test)",
            "",
            *weight_rows,
            "",
            "## Inputs",
            "",
            f"- suspect: `{report['inputs']['suspect']['path']}` (sha256 {report['inputs']['suspect']['sha256']})",
            f"- control: `{report['inputs']['control']['path']}` (sha256 {report['inputs']['control']['sha256']})",
            "- every passage's file and character offsets: `passages.jsonl`; its scores: `scores.jsonl`",
            "",
        ]
    )


def run(args: argparse.Namespace) -> int:
    _check_test_arguments(args)
    output_dir = _check_output_dir(args.output_dir, overwrite=args.overwrite)
    suspect_sources, control_sources = read_work(args.suspect), read_work(args.control)
    calls = scorer_calls_from_args(args)  # validate scorer names before loading any model
    models = load_models_from_args(args)
    target = models["target"]
    cut = {"tokenizer": target.tokenizer, "passage_tokens": args.passage_tokens, "stride": args.passage_stride}
    suspect, control = passages_from_sources(suspect_sources, **cut), passages_from_sources(control_sources, **cut)
    if args.passage_tokens + len(target.prefix_ids) > target.context_length:
        logger.warning(
            "passages of %d tokens exceed the model's context of %d: each is scored in windows",
            args.passage_tokens,
            target.context_length,
        )
    # the negative control splits the controls in two, so they need twice the minimum; check before scoring
    for name, found, needed in (
        ("suspect", suspect, MIN_PASSAGES_PER_SET),
        ("control", control, 2 * MIN_PASSAGES_PER_SET),
    ):
        if len(found) < needed:
            raise LlmMiaError(
                f"--{name} gives {len(found)} passage(s) of up to {args.passage_tokens} tokens; the test needs at "
                f"least {MIN_PASSAGES_PER_SET} suspect and {2 * MIN_PASSAGES_PER_SET} control passages. Add text "
                f"or lower --passage-tokens"
            )
    documents = [p.to_document(label=1, group="suspect", prefix="suspect:") for p in suspect]
    documents += [p.to_document(label=0, group="control", prefix="control:") for p in control]

    # one extraction per (model, text variant) over suspect and control passages together
    settings = settings_from_args(args)
    cache = cache_from_args(args)
    stats = extract_views(documents, needed_views(calls), models=models, settings=settings, cache=cache)
    rows = score_rows(documents, calls, stats)
    columns = [call.column for call in calls]
    suspect_rows, control_rows = rows[: len(suspect)], rows[len(suspect) :]
    suspect_x, suspect_kept, suspect_excluded = _features(suspect_rows, columns)
    control_x, control_kept, control_excluded = _features(control_rows, columns)
    if suspect_excluded or control_excluded:
        logger.warning(
            "left out of the test: %d suspect and %d control passage(s) without every score (see scores.jsonl)",
            sum(suspect_excluded.values()),
            sum(control_excluded.values()),
        )
    result = dataset_inference(
        suspect_x,
        control_x,
        control_groups=[control[i].source for i in control_kept],
        alpha=args.alpha,
        splits=args.splits,
        seed=args.seed,
        clip_quantile=args.clip_quantile,
        feature_names=columns,
    )
    blind, blind_unit = _blind(
        [suspect[i] for i in suspect_kept],
        [control[i] for i in control_kept],
        suspect_sources,
        control_sources,
        args.seed,
    )

    record = {
        "inputs": {
            name: {"path": path, "sources": len(sources), "sha256": sha256_documents([s.text for s in sources])}
            for name, path, sources in (
                ("suspect", args.suspect, suspect_sources),
                ("control", args.control, control_sources),
            )
        },
        "models": {role: model.describe() for role, model in models.items()},
        "scorers": [{"column": c.column, "scorer": c.scorer.name, "params": dict(c.params)} for c in calls],
        "settings": {
            "batch_size": settings.batch_size,
            "window": settings.window,
            "stride": settings.stride,
            "passage_tokens": args.passage_tokens,
            "passage_stride": args.passage_stride or args.passage_tokens,
            "alpha": args.alpha,
            "splits": args.splits,
            "clip_quantile": args.clip_quantile,
            "seed": args.seed,
        },
        "execution": {
            "cache": None if cache is None else {"path": str(cache.path), "hits": cache.hits, "stored": cache.stored},
        },
        "direction": "higher score = more likely a member",
    }
    report = {
        **record,
        "verdict": result.verdict,
        "verdict_sentence": verdict_sentence(result),
        "control_assumption": CONTROL_ASSUMPTION,
        "features": columns,
        "passages": {
            "passage_tokens": args.passage_tokens,
            "suspect": {
                "sources": len(suspect_sources),
                "passages": len(suspect),
                "tested": len(suspect_kept),
                "excluded": dict(suspect_excluded),
            },
            "control": {
                "sources": len(control_sources),
                "passages": len(control),
                "tested": len(control_kept),
                "excluded": dict(control_excluded),
            },
        },
        "result": result.to_dict(),
        "blind_baseline": {
            "unit": blind_unit,
            "result": None if blind is None else blind.to_dict(best_attack_auroc=result.main.auroc),
        },
    }

    output_dir.mkdir(parents=True, exist_ok=True)
    write_rows(rows, output_dir / "scores.jsonl")
    write_run_record(output_dir / "scores.jsonl", record)
    kept = {("suspect", i) for i in suspect_kept} | {("control", i) for i in control_kept}
    passage_rows = [
        {"set": name, **passage.record(), "in_test": (name, index) in kept}
        for name, found in (("suspect", suspect), ("control", control))
        for index, passage in enumerate(found)
    ]
    write_rows(passage_rows, output_dir / "passages.jsonl")
    (output_dir / "report.json").write_text(json.dumps(json_ready(report), indent=2, default=str), encoding="utf-8")
    (output_dir / "summary.md").write_text(_markdown(report), encoding="utf-8")
    plot_curve(result, output_dir / "p_value_curve.png")

    for line in summary_lines(report):
        print(line)
    print(f"wrote {', '.join(OUTPUT_FILES)} to {output_dir}")
    return 0
