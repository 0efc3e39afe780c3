"""Write a synthetic held-out set for a suspect work (Zhao et al. 2025): the control of a post-hoc dataset test.

examples:
  llm-mia synthesize --suspect my_book.txt --output synthetic.json
  llm-mia synthesize --suspect my_book/ --generator ./other-lm --epochs 3 --pairs 500 --seed 1 --output s.json
  llm-mia dataset-test --model ./suspect --suspect my_book.txt --synthetic-control --synthetic synthetic.json \\
      --output-dir report/

The work is cut into snippets of --snippet-words words and shuffled (seeded); half (at most 2,000) are completed,
the rest fine-tune the generator (the packaged SmolLM2-135M by default, any local causal LM with --generator),
which therefore never sees a snippet it completes. After the first half of each completed snippet's tokens the
generator writes a suffix of the real one's length, twice (the second is the negative control's). The set is
refused when the generator copies the work (more than 5% of suffixes containing --copy-words generated
words in a row found in the work) and when the work is too short (80 snippets, about 5,000 words at 64 words
per snippet). The file records the work's SHA-256, the generator's identity and training key, the seed and
every setting; `dataset-test --synthetic` refuses it for another text.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the command line starts without the generator's dependencies
    from llm_mia.synthetic.generate import SynthesisSettings

from llm_mia.cli.flags import add_flags


def add_synthesis_arguments(group: argparse._ArgumentGroup) -> None:
    """How the synthetic set is made, added to ``group`` (shared with `dataset-test --synthetic-control`, which
    adds them to its own synthetic-control group: one heading, not two)."""
    group.add_argument("--generator", default="smollm2-135m", help="base model fine-tuned into the generator")
    group.add_argument("--snippet-words", type=int, default=64, help="words per snippet (default 64)")
    group.add_argument("--pairs", type=int, help="snippets to complete (default: half, at most 2,000)")
    group.add_argument("--generator-epochs", type=int, default=2, help="generator fine-tuning epochs (2)")
    group.add_argument("--generator-lr", type=float, default=1e-4, help="generator learning rate (1e-4)")
    group.add_argument("--synthesis-seed", type=int, default=0, help="seed of the shuffle, training and sampling")
    group.add_argument("--temperature", type=float, default=0.6, help="sampling temperature (0.6, as published)")
    group.add_argument("--copy-words", type=int, default=12, help="a shared span this long counts as copied (12)")


def synthesis_settings(args: argparse.Namespace) -> SynthesisSettings:
    from llm_mia.synthetic.generate import SynthesisSettings

    return SynthesisSettings(
        generator=args.generator,
        snippet_words=args.snippet_words,
        pairs=args.pairs,
        epochs=args.generator_epochs,
        learning_rate=args.generator_lr,
        seed=args.synthesis_seed,
        temperature=args.temperature,
        copy_words=args.copy_words,
        device=args.device,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suspect", required=True, help="the work: a text file, a directory, or .jsonl/.csv rows")
    parser.add_argument("--output", required=True, help="the synthetic set (.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    add_flags(parser, "device", "no_progress")
    add_synthesis_arguments(parser.add_argument_group("how the set is made"))


def run(args: argparse.Namespace) -> int:
    from llm_mia.io.outputs import check_cache_root_writable, check_output_file
    from llm_mia.workflows.synthetic import make_synthetic_set

    output = check_output_file(args.output, overwrite=args.overwrite, suffixes=(".json",))
    check_cache_root_writable()  # the fine-tuned generator is cached there
    made = make_synthetic_set(args.suspect, synthesis_settings(args), progress=not args.no_progress)
    made.write(output)
    generator = made.record["generator"]
    print(
        f"wrote {len(made.pairs)} real/synthetic suffix pairs to {output}; generator {generator['base']} fine-tuned "
        f"on {generator['trained_on_snippets']} other snippets of the work ({generator['directory']})"
    )
    return 0
