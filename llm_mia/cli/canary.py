"""Canaries: plant secret sequences before publishing, test a model for them later with an exact p-value.

examples:
  llm-mia canary make --generator words --count 20 --siblings 999 --length 32 --seed 7 --secret secret.json
  llm-mia canary make --generator template --template "The vault code of {word} is {number:8}." --secret s.json
  llm-mia canary plant --secret secret.json --into book.txt --output book-planted.txt --repetitions 4
  llm-mia canary plant --secret secret.json --into corpus.jsonl --output planted.jsonl --mode documents
  llm-mia canary test --model DIR --secret secret.json --commitment secret.json.commitment.json --output result.json
  llm-mia canary plan --model DIR --secret secret.json --commitment secret.json.commitment.json \\
      --question "Was model M trained on our canaries?" --analyst "A. Expert" --output plan.json
  llm-mia evidence run plan.json --output-dir bundle/ && llm-mia verify bundle/

make: draws each canary with S never-published siblings from one seeded generator (the published one chosen at
random after drawing) and writes the secret file and a public commitment (its SHA-256) to publish or timestamp
now. Keep the secret file unchanged and private: the test refuses it if its hash changed. plant: copies the work
or corpus with every canary planted R times and logs where each copy went (OUTPUT.plant-log.json). test: ranks
each canary among its siblings under the model (ties against the canary): p = rank / (S + 1), exact under "not
trained on it"; exposure = log2(S + 1) - log2(rank); Fisher's combination over canaries. plan: fixes the
secret file's SHA-256 (checked against --commitment), the model's files and the scorer in a hashed plan that
`llm-mia evidence run` carries out into a verifiable bundle (the secret file itself stays out of the plan).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_mia.workflows.canary import CanaryTestSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from llm_mia.cli.common import add_model_arguments

    parser.add_argument("action", choices=("make", "plant", "test", "plan"), help="which step to run")
    parser.add_argument("--secret", required=True, help="the secret file (make writes it; plant and test read it)")
    make = parser.add_argument_group("make")
    make.add_argument("--generator", choices=("words", "template", "model"), default="words")
    make.add_argument("--count", type=int, default=20, help="canaries N (default 20)")
    make.add_argument("--siblings", type=int, default=999, help="never-published siblings S per canary (default 999)")
    make.add_argument("--length", type=int, default=32, help="tokens per canary (words, model; default 32)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--tokenizer", default="smollm2-135m", help="tokenizer that counts --length (words)")
    make.add_argument("--word-list", help="one word per line (default: words of the packaged Wikipedia summaries)")
    make.add_argument("--template", help="template generator: a sentence with {word} and {number[:K]} slots")
    make.add_argument("--generator-model", default="smollm2-135m", help="model generator: the sampling model")
    make.add_argument("--temperature", type=float, default=1.0, help="model generator: sampling temperature")
    make.add_argument("--perplexity", type=float, nargs=2, default=(1.0, 1e9), metavar=("LOW", "HIGH"))
    plant = parser.add_argument_group("plant")
    plant.add_argument("--into", help="the work (text) or corpus (JSONL) to plant into")
    plant.add_argument("--output", help="plant: the planted copy; test: the result JSON; plan: the plan file")
    plant.add_argument("--repetitions", type=int, default=1, help="copies of each canary (default 1)")
    plant.add_argument("--mode", choices=("append", "paragraphs", "documents"), default="paragraphs")
    test = parser.add_argument_group("test")
    test.add_argument("--commitment", help="the published SHA-256 (or the commitment JSON); checked first")
    test.add_argument("--scorer", default="loss", help="one registered scorer (default loss)")
    test.add_argument("--alpha", type=float, default=0.05)
    plan = parser.add_argument_group("plan (pre-register the test for an evidence bundle)")
    plan.add_argument("--question", help="the question in words")
    plan.add_argument("--analyst", help="who prepares the analysis (name, affiliation)")
    plan.add_argument("--overwrite", action="store_true", help="replace an existing plan file")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    secret = Path(args.secret)
    if args.action == "make":
        return _make(args, secret)
    if args.action == "plant":
        return _plant(args, secret)
    if args.action == "plan":
        return _plan(args, secret)
    return _test(args, secret)


def _make(args: argparse.Namespace, secret: Path) -> int:
    from llm_mia.canaries.make import CanarySettings
    from llm_mia.cli.common import summarise
    from llm_mia.workflows.canary import make_canary_files

    settings = CanarySettings(
        generator=args.generator,
        count=args.count,
        siblings=args.siblings,
        length=args.length,
        seed=args.seed,
        tokenizer=args.tokenizer,
        word_list=args.word_list,
        template=args.template,
        model=args.generator_model,
        temperature=args.temperature,
        perplexity=tuple(args.perplexity),
    )
    summarise(make_canary_files(settings, secret))
    return 0


def _plant(args: argparse.Namespace, secret: Path) -> int:
    from llm_mia.cli.common import summarise
    from llm_mia.errors import InputError
    from llm_mia.workflows.canary import plant_canary_files

    if not args.into or not args.output:
        raise InputError("plant needs --into (the work or corpus) and --output (the planted copy)")
    planted = plant_canary_files(secret, args.into, Path(args.output), repetitions=args.repetitions, mode=args.mode)
    summarise(planted)
    return 0


def _test_settings(args: argparse.Namespace) -> CanaryTestSettings:
    from llm_mia.cli.common import scoring_settings_from_args
    from llm_mia.workflows.canary import CanaryTestSettings

    scoring = scoring_settings_from_args(argparse.Namespace(**{**vars(args), "scorers": [args.scorer]}))
    return CanaryTestSettings(
        models=scoring.models,
        scorer=args.scorer,
        alpha=args.alpha,
        commitment=args.commitment,
        batch_size=args.batch_size,
        cache=scoring.cache,
        threads=scoring.extraction.threads,
    )


def _plan(args: argparse.Namespace, secret: Path) -> int:
    from llm_mia.cli.common import write_and_summarise
    from llm_mia.errors import InputError
    from llm_mia.io.outputs import check_output_file
    from llm_mia.workflows.canary_evidence import build_canary_plan
    from llm_mia.workflows.plan import PlannedAnalysis

    if not args.question or not args.analyst or not args.output:
        raise InputError("plan needs --question, --analyst, --commitment and --output (the plan file)")
    output = check_output_file(args.output, overwrite=args.overwrite, suffixes=(".json",))
    plan = build_canary_plan(secret, _test_settings(args), question=args.question, analyst=args.analyst)
    path, sidecar = write_and_summarise(PlannedAnalysis(plan), output)
    print(f"wrote {path} and {sidecar}; run it with: llm-mia evidence run {path} --output-dir bundle/")
    return 0


def _test(args: argparse.Namespace, secret: Path) -> int:
    from llm_mia.cli.common import write_and_summarise
    from llm_mia.workflows.canary import canary_test

    result = canary_test(secret, _test_settings(args))
    if write_and_summarise(result, args.output):
        print(f"result in {args.output}")
    return 0
