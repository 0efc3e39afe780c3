"""Arguments shared by subcommands, and the settings objects built from them (before any model loads)."""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import Any

from llm_mia.backends.big_models import parse_max_memory
from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.local import DEFAULT_MODEL
from llm_mia.backends.remote.client import DEFAULT_TIME_BUDGET, DEFAULT_TIMEOUT, ApiSettings
from llm_mia.cli.flags import add_flags
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Columns, Document, read_documents
from llm_mia.io.outputs import check_cache_writable
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.workflows.results import WorkflowResult, WritableResult


def builtin_sample_path() -> Path:
    """Real text shipped with the package: famous public-domain passages and passages written in 2026."""
    return Path(str(resources.files("llm_mia") / "data" / "sample.jsonl"))


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models")
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"target model: packaged alias, local directory, .gguf file, cached Hugging Face id, or api:NAME "
        f"(a model behind an OpenAI-compatible API: see --api-base) "
        f"(default: {DEFAULT_MODEL}, the packaged SmolLM2-135M-Instruct, dequantized from its Q4_1 GGUF)",
    )
    group.add_argument("--revision", help="Hugging Face revision of --model (branch, tag or commit)")
    group.add_argument("--reference", help="reference model for the `reference` scorer (same forms as --model)")
    group.add_argument("--reference-revision", help="Hugging Face revision of --reference")
    add_flags(group, "dtype", "device")
    group.add_argument(
        "--trust-remote-code", action="store_true", help="run model code shipped with the checkpoint (off by default)"
    )
    group.add_argument(
        "--output-defense",
        metavar="SPEC",
        help="score what a defended deployment of --model returns: temperature:t=T, noise:scale=S[;distribution="
        "laplace][;seed=N], round:decimals=D or top_k:k=K (applied to the logits before every scorer)",
    )
    group.add_argument(
        "--device-map",
        choices=("auto",),
        help="auto: spread a model too large for one device over the GPUs, then CPU, then disk (accelerate)",
    )
    group.add_argument(
        "--max-memory",
        metavar="DEV=SIZE,...",
        help="with --device-map auto: memory per device, e.g. cuda:0=20GiB,cuda:1=20GiB,cpu=60GiB",
    )
    add_flags(group, "batch_size")
    group.add_argument("--window", type=int, help="tokens per model call (default: the model's context length)")
    group.add_argument("--stride", type=int, help="new tokens per window for long texts (default: half a window)")
    add_flags(group, "no_progress", "cache_dir", "no_cache", "threads")
    add_api_arguments(parser)
    add_engine_arguments(parser)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Where scoring runs: here (one process, or every process of a torchrun launch) or on Ray actors."""
    group = parser.add_argument_group("engine (large runs: llm_mia.scoring.ray_engine)")
    group.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="local (default) or ray (Ray Data actors)"
    )
    group.add_argument("--ray-address", help="an existing Ray cluster (host:port, ray://host:port or auto)")
    group.add_argument("--ray-actors", type=int, default=2, help="actors, each loading the models once (2)")
    group.add_argument("--ray-cpus", type=float, default=1.0, help="CPUs per actor (1)")
    group.add_argument("--ray-gpus", type=float, default=0.0, help="GPUs per actor (0)")
    group.add_argument(
        "--ray-commit-dir", help="where finished blocks are committed for resuming (default: <cache>/ray-blocks)"
    )
    group.add_argument(
        "--block-documents",
        type=int,
        default=256,
        help="documents planned together, in input order: the unit an engine hands out and commits (256)",
    )


def ray_settings_from_args(args: argparse.Namespace) -> Any:
    """The ``RaySettings`` for ``--engine ray`` (None for the local engine); refuses Ray options without it."""
    if getattr(args, "engine", "local") != "ray":
        if getattr(args, "ray_address", None):
            raise LlmMiaError("--ray-address applies to --engine ray; add --engine ray")
        return None
    from llm_mia.scoring.ray_engine import RaySettings, require_ray

    require_ray()
    return RaySettings(
        address=args.ray_address,
        actors=args.ray_actors,
        cpus_per_actor=args.ray_cpus,
        gpus_per_actor=args.ray_gpus,
        commit_dir=args.ray_commit_dir,
    )


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Where models named ``api:NAME`` are served, and how carefully to talk to them."""
    group = parser.add_argument_group("models behind an API (--model api:NAME)")
    group.add_argument("--api-base", help="OpenAI-compatible API root, e.g. https://api.openai.com/v1")
    group.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (default: OPENAI_API_KEY; the key is never printed or stored)",
    )
    group.add_argument(
        "--api-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds one attempt waits for a response (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--api-time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET,
        metavar="SECONDS",
        help=f"seconds one request may take in all, retries and waits included (default {DEFAULT_TIME_BUDGET:g}): "
        "a server that never answers fails after this long",
    )
    group.add_argument(
        "--api-retries",
        type=int,
        default=6,
        help="retries on 429, 5xx, timeouts and dropped connections, within the time budget (default 6)",
    )
    group.add_argument("--api-requests-per-second", type=float, help="client-side request rate limit")
    group.add_argument("--api-tokens-per-minute", type=float, help="client-side prompt-token rate limit")
    group.add_argument(
        "--api-concurrency",
        type=int,
        default=1,
        help="requests in flight at once (default 1; forced-token scoring always sends one at a time, and a "
        "single-slot local server such as llama.cpp gains nothing from more)",
    )


def api_settings_from_args(args: argparse.Namespace) -> ApiSettings | None:
    """The API settings the arguments give (None without --api-base)."""
    if not getattr(args, "api_base", None):
        return None
    return ApiSettings(
        base_url=args.api_base,
        key_env=args.api_key_env,
        timeout=args.api_timeout,
        time_budget=args.api_time_budget,
        max_retries=args.api_retries,
        requests_per_second=args.api_requests_per_second,
        tokens_per_minute=args.api_tokens_per_minute,
        concurrency=args.api_concurrency,
    )


def add_input_arguments(
    parser: argparse.ArgumentParser, *, required: bool = False, input_help: str | None = None
) -> None:
    group = parser.add_argument_group("input")
    group.add_argument(
        "--input",
        required=required,
        help=input_help
        or "JSONL, JSON, CSV, Parquet, a text file, a directory of text files or a saved datasets directory"
        + ("" if required else " (default: a built-in sample of real text)"),
    )
    group.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    group.add_argument("--id-column", default="id", help="column holding document ids (default: id; else row index)")
    group.add_argument("--label-column", default="label", help="column with 1 = member, 0 = non-member (optional)")
    group.add_argument("--group-column", default="group", help="column naming the work a passage belongs to")
    group.add_argument("--split", help="split of a saved DatasetDict")


def add_precision_check_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision-check",
        type=int,
        metavar="N",
        help="with --dtype bfloat16, float16 or mixed: first score a seeded sample of N documents in that dtype and in "
        "float32 and print what the lower precision moves (per scorer the largest difference and the rank "
        "correlation; the AUROC under each where labels exist); recorded in the run record",
    )


def check_precision_arguments(args: argparse.Namespace) -> None:
    """Refuse --precision-check without a lower dtype, or with a size below 2, before any model loads."""
    if args.precision_check is None:
        return
    if args.dtype == "float32":
        raise LlmMiaError(
            "--precision-check compares a lower precision with float32: add --dtype bfloat16 or float16, or mixed"
        )
    if args.precision_check < 2:
        raise LlmMiaError(f"--precision-check needs at least 2 documents, not {args.precision_check}")


def add_scorer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scorers",
        nargs="+",
        metavar="SCORER",
        help="scorers to run, e.g. loss zlib min_k:k=0.1,0.2 (default: all that the models allow; see `llm-mia list`)",
    )


def columns_from_args(args: argparse.Namespace) -> Columns:
    return Columns(text=args.text_column, id=args.id_column, label=args.label_column, group=args.group_column)


def documents_from_args(args: argparse.Namespace) -> tuple[list[Document], str]:
    """Read the documents named by --input (or the built-in sample); returns them and their source. With
    ``--engine ray`` a JSONL / Parquet / CSV input is read by Ray Data (any filesystem pyarrow supports)."""
    source = args.input or str(builtin_sample_path())
    ray = ray_settings_from_args(args)
    from llm_mia.scoring.ray_engine import ray_readable

    if ray is not None and args.input and ray_readable(args.input):
        from llm_mia.scoring.ray_engine import read_with_ray

        return read_with_ray(source, columns_from_args(args), ray), source
    return read_documents(source, columns=columns_from_args(args), split=args.split), source


def cache_from_args(args: argparse.Namespace) -> bool | Path:
    """The stats cache ``--cache-dir`` / ``--no-cache`` name (False: none, True: the default one), checked to be
    writable before any model loads (``llm_mia.io.outputs.check_cache_writable``)."""
    from llm_mia.engine.stats_cache import default_cache_path

    if getattr(args, "no_cache", False):
        return False
    directory = getattr(args, "cache_dir", None)
    check_cache_writable(Path(directory) / "tokenstats.sqlite" if directory else default_cache_path())
    return Path(directory) / "tokenstats.sqlite" if directory else True


def scoring_settings_from_args(args: argparse.Namespace) -> ScoringSettings:
    """Models, scorers, extraction and cache as the arguments say; validated here, before any model loads."""
    cache = cache_from_args(args)
    return ScoringSettings(
        models=ModelSettings(
            model=args.model,
            revision=args.revision,
            reference=args.reference,
            reference_revision=args.reference_revision,
            dtype=args.dtype,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
            api=api_settings_from_args(args),
            output_defense=getattr(args, "output_defense", None),
            device_map=getattr(args, "device_map", None),
            max_memory=parse_max_memory(args.max_memory) if getattr(args, "max_memory", None) else None,
        ),
        scorers=tuple(args.scorers) if args.scorers else None,
        extraction=ExtractionSettings(
            batch_size=args.batch_size,
            window=args.window,
            stride=args.stride,
            block_documents=getattr(args, "block_documents", 256),
            threads=getattr(args, "threads", None),
            progress=not args.no_progress,
        ),
        cache=cache,
        ray=ray_settings_from_args(args),
    )


# ------------------------------------------------------------------ known-split runs (benchmark, demo)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared with ``llm-mia demo``: threads, device, cache, progress."""
    group = parser.add_argument_group("running")
    add_flags(group, "threads", "device", "no_cache", "no_progress")


def summarise(result: WorkflowResult) -> None:
    """Print what a workflow's result found (its summary lines)."""
    for line in result.summary_lines():
        print(line)


def write_and_summarise(result: WritableResult, destination: str | Path | None) -> list[Path]:
    """What a command does with a result that has files: write it to ``destination`` (a file or directory, as the
    result type says; nothing when None), then print its summary lines. Returns the paths written."""
    written = [] if destination is None else result.write(destination)
    summarise(result)
    return written
