"""Compare a model behind an API with white-box scores of the same weights (run once before trusting an API).

examples:
  # the packaged SmolLM2 GGUF served by llama.cpp's Python server, against the same GGUF loaded here
  python -m llama_cpp.server --model SmolLM2.gguf --logits_all true --port 8000 &
  llm-mia check-backend --model api:smollm2 --api-base http://127.0.0.1:8000/v1 --local smollm2-135m

For every text: the per-token log-probs side by side (where both sides cut it into the same tokens) and the
loss, zlib and Min-K% scores. The endpoint agrees when every text's loss is within --tolerance nats/token. The
result is stored, and every later run record of this endpoint and model cites it.
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import (
    add_api_arguments,
    add_input_arguments,
    api_settings_from_args,
    cache_from_args,
    documents_from_args,
    summarise,
)
from llm_mia.cli.flags import add_flags
from llm_mia.workflows.check_backend import DEFAULT_TOLERANCE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the model behind the API, api:NAME")
    parser.add_argument("--local", required=True, help="the same weights here: alias, directory or .gguf file")
    add_api_arguments(parser)
    add_input_arguments(parser)
    parser.add_argument("--limit", type=int, default=4, help="check the first N texts (default 4)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"largest loss difference accepted, nats/token (default {DEFAULT_TOLERANCE})",
    )
    add_flags(parser, "device", "no_cache")


def run(args: argparse.Namespace) -> int:
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.workflows.check_backend import check_backend

    settings = ModelSettings(model=args.model, device=args.device, api=api_settings_from_args(args))
    documents, _ = documents_from_args(args)
    cache = bool(cache_from_args(args))
    result = check_backend(settings, args.local, documents[: max(1, args.limit)], tolerance=args.tolerance, cache=cache)
    summarise(result)
    return 0 if result.agrees else 1
