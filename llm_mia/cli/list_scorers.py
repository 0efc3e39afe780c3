"""List the registered scorers: name, the views (model passes) each reads, hyperparameters, summary.

examples:
  llm-mia list
  llm-mia list --verbose-docs      # full docstrings: formula, direction, source
  llm-mia list --model api:gpt-3.5-turbo-instruct --api-base https://api.openai.com/v1
                                   # what that endpoint returns, and which scorers it can serve
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import add_api_arguments, api_settings_from_args, summarise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose-docs", action="store_true", help="print each scorer's full docstring")
    parser.add_argument("--model", help="a model behind an API (api:NAME): probe it and mark what it can serve")
    add_api_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.scorer_list import list_scorers

    listing = list_scorers(model=args.model, api=api_settings_from_args(args), docs=args.verbose_docs)
    summarise(listing)
    return 0
