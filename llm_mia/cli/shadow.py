"""Shadow and reference models: train a population of K models on random halves of a population of documents,
score every document with every model, and evaluate the attacks that calibrate each text against them.

examples:
  llm-mia shadow train --recipe gpt2-wikipedia --models 8 --output shadow-gpt2     # CI size: a minute
  llm-mia shadow score --output shadow-gpt2
  llm-mia shadow evaluate --output shadow-gpt2 --k 2 4 8
  llm-mia shadow train --recipe gpt2-wikipedia --models 16 --population 2000 --epochs 4 --processes 2 \\
      --output shadow-gpt2-16

train: draws the population (and RMIA's z documents, which no model trains on) from the recipe's corpus, saves
it (population.jsonl) and the inclusion matrix (inclusion.csv: documents x models, 1 = trained on; the last
column is the target's own random half), then trains each model with the recipe (cached; a killed run resumes
with the next untrained model). score: every model scores every document once (stats cache), saved as a
documents x models signal matrix (signals.npz + signals.json). evaluate: for each K, Shokri's attack classifier,
LiRA offline and online, RMIA and one reference model, fitted on the first K shadow models and applied to the
target, beside the target-only baselines: AUROC [95% CI] and TPR at 0.1/1/5% FPR with the number of
non-members each rests on. Attacks never see the target's inclusion column; it only labels the evaluation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llm_mia.cli.common import cache_from_args, write_and_summarise
from llm_mia.cli.flags import add_flags
from llm_mia.errors import LlmMiaError
from llm_mia.io.outputs import check_cache_root_writable, check_writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("train", "score", "evaluate"), help="which step to run")
    parser.add_argument("--output", required=True, help="the population's directory (train writes it)")
    train = parser.add_argument_group("train")
    train.add_argument("--recipe", default="gpt2-wikipedia", help="known-split recipe (llm-mia benchmark lists them)")
    train.add_argument("--size", choices=("ci", "full"), default="ci", help="the recipe's model and training size")
    train.add_argument("--models", type=int, default=4, help="K shadow models (default 4)")
    train.add_argument("--population", type=int, help="population documents (default: ci 96, full 2000)")
    train.add_argument("--z-documents", type=int, help="RMIA's population z, trained on by no model (ci 24, full 250)")
    train.add_argument("--epochs", type=int, help="training epochs (default: the recipe's last snapshot)")
    train.add_argument("--seed", type=int, default=0, help="seed of population, inclusion matrix and training")
    train.add_argument("--processes", type=int, default=1, help="models trained at once, one per process")
    add_flags(train, "threads")
    score = parser.add_argument_group("score")
    score.add_argument("--signals", nargs="+", default=[], metavar="SCORER", help="extra signals, e.g. zlib min_k")
    add_flags(score, "batch_size", "no_cache")
    evaluate = parser.add_argument_group("evaluate")
    evaluate.add_argument("--k", type=int, nargs="+", help="numbers of shadow models (default 2, 4, 8, ... up to K)")
    evaluate.add_argument("--attacks", nargs="+", help="attacks to run (default: all; llm-mia list shows them)")
    evaluate.add_argument("--lira-variance", choices=("auto", "per-example", "global"), default="auto")
    evaluate.add_argument("--rmia-a", type=float, help="RMIA's offline a (default: tuned on a shadow model)")
    evaluate.add_argument("--rmia-gamma", type=float, default=1.0, help="RMIA's gamma (default 1)")
    evaluate.add_argument("--shokri-classifier", choices=("logistic", "boosting"), default="logistic")
    add_flags(parser, "device", "no_progress")


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.shadow import (
        ShadowSettings,
        evaluate_shadow_attacks,
        score_shadow_models,
        train_shadow_models,
    )

    if args.no_cache and args.action != "score":
        raise LlmMiaError(
            f"--no-cache applies to shadow score: shadow {args.action} keeps no stats (train caches its models, and a "
            "killed run resumes from them)"
        )
    directory = Path(args.output)
    where = directory if directory.is_dir() else directory.absolute().parent  # train creates it
    check_writable(where, what=f"--output {directory}", fix="choose another --output")
    if args.action == "train":
        check_cache_root_writable()  # the trained models are cached there
        settings = ShadowSettings(
            recipe=args.recipe, size=args.size, models=args.models, population=args.population,
            z_documents=args.z_documents, epochs=args.epochs, seed=args.seed, processes=args.processes,
            threads=args.threads, device=args.device,
        )  # fmt: skip
        population = train_shadow_models(settings, args.output, progress=not args.no_progress, echo=print)
        print(
            f"{len(population.model_dirs)} models trained on {len(population.population)} documents; "
            f"inclusion matrix: {Path(args.output) / 'inclusion.csv'}"
        )
    elif args.action == "score":
        matrix, _ = score_shadow_models(
            args.output, signals=args.signals, batch_size=args.batch_size, device=args.device,
            cache=bool(cache_from_args(args)), progress=not args.no_progress, echo=print,
        )  # fmt: skip
        print(f"signals {', '.join(matrix.values)} for {len(matrix.ids)} documents x {matrix.n_models} models")
    else:
        options = {
            "lira-offline": {"variance": args.lira_variance},
            "lira-online": {"variance": args.lira_variance},
            "rmia": {"a": args.rmia_a, "gamma": args.rmia_gamma},
            "shokri": {"classifier": args.shokri_classifier},
        }
        evaluation = evaluate_shadow_attacks(args.output, ks=args.k, attacks=args.attacks, options=options)
        (path,) = write_and_summarise(evaluation, args.output)
        print(f"every number: {path}")
    return 0
