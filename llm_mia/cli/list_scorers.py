"""List the registered scorers: name, the views (model passes) each reads, hyperparameters, summary.

examples:
  llm-mia list
  llm-mia list --verbose-docs      # full docstrings: formula, direction, source
  llm-mia list --model api:gpt-3.5-turbo-instruct --api-base https://api.openai.com/v1
                                   # what that endpoint returns, and which scorers it can serve
"""

from __future__ import annotations

import argparse
from typing import Any

from llm_mia.cli.common import add_api_arguments, api_settings_from_args
from llm_mia.scoring.scorers import all_scorers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose-docs", action="store_true", help="print each scorer's full docstring")
    parser.add_argument("--model", help="a model behind an API (api:NAME): probe it and mark what it can serve")
    add_api_arguments(parser)


PASSES = {
    "target": "shared pass",
    "target_lower": "+1 pass (lowercased)",
    "reference": "+1 reference pass",
    "target_recall": "",  # its own cost line says it
    "target_gradient": "",
    "target_neighbours": "",
}


def cost_class(scorer: Any) -> str:
    """What a scorer costs: the forward passes its views need (the target's is shared by every scorer), and
    anything of its own (``register(cost=...)``: a corpus table, a backward pass, generation)."""
    parts = [PASSES.get(view, f"+1 pass ({view})") for view in scorer.views if PASSES.get(view, True)]
    if scorer.cost != "one pass":
        parts.append(scorer.cost)
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    arrays = None
    if args.model:
        from llm_mia.backends.local import ModelSpec
        from llm_mia.backends.remote.model import connect

        endpoint = connect(ModelSpec(name=args.model), api_settings_from_args(args))
        print(f"{args.model} at {endpoint.api.root} (reports model {endpoint.capabilities.model_version!r})")
        print(endpoint.capabilities.describe())
        check = endpoint.describe()["agreement_check"]
        if not isinstance(check, str):
            check = f"{'agrees' if check['agrees'] else 'DOES NOT AGREE'} (checked {check['checked_at']})"
        print(f"agreement check: {check}")
        print()
        arrays = set(endpoint.capabilities.arrays)
    for scorer in all_scorers().values():
        params = ", ".join(f"{k}={v}" for k, v in scorer.defaults.items()) or "-"
        length = "" if scorer.length_invariant else " [length-sensitive: left out of dataset tests]"
        served = ""
        if arrays is not None:
            missing = sorted(set(scorer.needs) - arrays)
            served = "  " + (f"[not served: needs {', '.join(missing)}]" if missing else "[served]")
        reads = ", ".join(scorer.views)
        opt_in = " [opt-in: runs when named]" if scorer.opt_in else ""
        print(
            f"{scorer.name:<18} reads: {reads:<22} cost: {cost_class(scorer):<34} params: {params:<8} "
            f"{scorer.summary}{length}{opt_in}{served}"
        )
        if args.verbose_docs:
            print("\n".join("    " + line for line in scorer.doc.splitlines()))
            for key, constraint in scorer.constraints.items():
                print(f"    {key}: {constraint.describe()}, default {scorer.defaults[key]!r}")
            print()
    from llm_mia.shadow.attacks import ATTACK_SUMMARIES

    print("\nshadow-model attacks (llm-mia shadow evaluate; calibrated on models trained with and without each text):")
    for name, summary in ATTACK_SUMMARIES.items():
        print(f"{name:<18} {summary}")
    print("all scores: higher = more likely a member")
    return 0
