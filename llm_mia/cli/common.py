"""Arguments and steps shared by subcommands that read documents and run models."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from llm_mia.cache import StatsCache
from llm_mia.distributed import current_shard, is_main_process, process_device
from llm_mia.documents import Columns, Document, read_documents
from llm_mia.extract import ExtractionSettings, Shard
from llm_mia.models import DEFAULT_MODEL, DTYPES, LoadedModel, ModelSpec, load_model
from llm_mia.results import sha256_documents
from llm_mia.scorers import ScorerCall, parse_scorer_specs
from llm_mia.scoring import extract_views, needed_views, score_rows


def builtin_sample_path() -> Path:
    """Real text shipped with the package: famous public-domain passages and passages written in 2026."""
    return Path(str(resources.files("llm_mia") / "data" / "sample.jsonl"))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"target model: packaged alias, local directory, .gguf file or cached Hugging Face id "
        f"(default: {DEFAULT_MODEL}, the packaged SmolLM2-135M)",
    )
    group.add_argument("--revision", help="Hugging Face revision of --model (branch, tag or commit)")
    group.add_argument("--reference", help="reference model for the `reference` scorer (same forms as --model)")
    group.add_argument("--reference-revision", help="Hugging Face revision of --reference")
    group.add_argument("--dtype", choices=DTYPES, default="float32", help="model precision (reductions stay float32)")
    group.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    group.add_argument(
        "--trust-remote-code", action="store_true", help="run model code shipped with the checkpoint (off by default)"
    )
    group.add_argument("--batch-size", type=int, default=8, help="segments per forward pass (default: 8)")
    group.add_argument("--window", type=int, help="tokens per model call (default: the model's context length)")
    group.add_argument("--stride", type=int, help="new tokens per window for long texts (default: half a window)")
    group.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    group.add_argument(
        "--cache-dir",
        help="stats cache database (default: <cache>/stats/tokenstats.sqlite); a killed run resumes from it",
    )
    group.add_argument("--no-cache", action="store_true", help="neither read nor write the stats cache")


def add_input_arguments(
    parser: argparse.ArgumentParser, *, required: bool = False, input_help: str | None = None
) -> None:
    group = parser.add_argument_group("input")
    group.add_argument(
        "--input",
        required=required,
        help=input_help
        or "JSONL, JSON, CSV, Parquet, .txt, a directory of .txt files or a saved datasets directory"
        + ("" if required else " (default: a built-in sample of real text)"),
    )
    group.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    group.add_argument("--id-column", default="id", help="column holding document ids (default: id; else row index)")
    group.add_argument("--label-column", default="label", help="column with 1 = member, 0 = non-member (optional)")
    group.add_argument("--group-column", default="group", help="column naming the work a passage belongs to")
    group.add_argument("--split", help="split of a saved DatasetDict")


def add_scorer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scorers",
        nargs="+",
        metavar="SCORER",
        help="scorers to run, e.g. loss zlib min_k:k=0.1,0.2 (default: all that the models allow; see `llm-mia list`)",
    )


def documents_from_args(args: argparse.Namespace) -> tuple[list[Document], str]:
    """Read the documents named by --input (or the built-in sample); returns them and their source."""
    source = args.input or str(builtin_sample_path())
    columns = Columns(text=args.text_column, id=args.id_column, label=args.label_column, group=args.group_column)
    return read_documents(source, columns=columns, split=args.split), source


def scorer_calls_from_args(args: argparse.Namespace) -> list[ScorerCall]:
    return parse_scorer_specs(args.scorers, has_reference=args.reference is not None)


def load_models_from_args(args: argparse.Namespace, shard: Shard | None = None) -> dict[str, LoadedModel]:
    device = process_device(args.device, shard)
    common = {"dtype": args.dtype, "device": device, "trust_remote_code": args.trust_remote_code}
    models = {"target": load_model(ModelSpec(name=args.model, revision=args.revision, **common))}
    if args.reference:
        models["reference"] = load_model(ModelSpec(name=args.reference, revision=args.reference_revision, **common))
    return models


def cache_from_args(args: argparse.Namespace) -> StatsCache | None:
    if args.no_cache:
        return None
    return StatsCache(Path(args.cache_dir) / "tokenstats.sqlite" if args.cache_dir else None)


def settings_from_args(args: argparse.Namespace) -> ExtractionSettings:
    return ExtractionSettings(
        batch_size=args.batch_size, window=args.window, stride=args.stride, progress=not args.no_progress
    )


def score_from_args(
    args: argparse.Namespace, documents: list[Document], source: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score documents as the arguments say; returns the rows and a run record (models, scorers, settings).

    Under a multi-process launcher every process takes part and every process gets the rows; only the main
    process should write them (see ``llm_mia.distributed.is_main_process``).
    """
    calls = scorer_calls_from_args(args)  # validate names before loading any model
    shard = current_shard(args.device)
    models = load_models_from_args(args, shard)
    settings = settings_from_args(args)
    cache = cache_from_args(args)
    if shard is not None and not is_main_process(shard):
        settings = ExtractionSettings(
            batch_size=settings.batch_size, window=settings.window, stride=settings.stride, progress=False
        )
    stats = extract_views(documents, needed_views(calls), models=models, settings=settings, cache=cache, shard=shard)
    rows = score_rows(documents, calls, stats)
    record = {
        "input": {
            "source": source,
            "documents": len(documents),
            "sha256": sha256_documents([d.text for d in documents]),
        },
        "models": {role: model.describe() for role, model in models.items()},
        "scorers": [{"column": c.column, "scorer": c.scorer.name, "params": dict(c.params)} for c in calls],
        "settings": {"batch_size": settings.batch_size, "window": settings.window, "stride": settings.stride},
        "execution": {
            "processes": 1 if shard is None else shard.count,
            "torch_threads": torch.get_num_threads(),
            "cache": None if cache is None else {"path": str(cache.path), "hits": cache.hits, "stored": cache.stored},
            "random_seed": "none used: scoring is deterministic",
        },
        "direction": "higher score = more likely a member",
    }
    return rows, record
