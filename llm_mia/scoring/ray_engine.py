"""Ray Data as a scoring engine: blocks of documents over actors that each load the models once.

``llm-mia score --engine ray`` (and ``evaluate`` / ``dataset-test``, wherever they score) hands the input to
Ray Data in blocks of ``block_documents`` documents, in input order (``ExtractionSettings.block_documents``).
An actor pool (``--ray-actors``, each with ``--ray-cpus`` CPUs and ``--ray-gpus`` GPUs) loads the target and
reference models once per actor and runs the same extraction and scorers as a single process
(``llm_mia.scoring.pipeline.compute_scores``: every view, reference and lowercase included) on each block. A single
process plans batches within the same blocks, so a block's batches, and every document's bits, are the same
on an actor as in one process with the same ``--threads`` (the thread count changes CPU matmul blocking).

Commit and resume: each finished block's rows are written at once to ``<commit_dir>/block-<k>-<key>.jsonl``,
``key`` the SHA-256 of everything that decides the rows (models' file hashes, dtype, device, scorers,
extraction settings, the block's ids, labels, groups and texts). A rerun after a crash submits only blocks with
no such file; within a run, Ray restarts a killed actor and retries its block (the stats cache, where the
actors share one, keeps the batches the killed actor had finished). The rows come back in input order with one
run record; its ``execution`` says how many blocks were computed, taken from earlier commits, and how many
model calls the actors made.

Connect to an existing cluster with ``address`` (``host:port`` of its head, ``ray://host:port`` for Ray
Client, or ``auto``); without one a local cluster is started with one CPU per actor and one for the driver.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.outputs import atomic_write

INSTALL = 'pip install "llm-mia[ray]"  (or: pip install "ray[data]==2.60.0")'
CONNECT_TIMEOUT = 20.0


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide: ``address`` (None: start a local cluster), ``actors``, resources per actor,
    ``commit_dir`` for finished blocks (None: ``<cache>/ray-blocks``), and the connection timeout in seconds."""

    address: str | None = None
    actors: int = 2
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    commit_dir: str | Path | None = None
    connect_timeout: float = CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        if self.actors < 1:
            raise LlmMiaError(f"--ray-actors {self.actors}: need at least 1")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise LlmMiaError("--ray-cpus must be > 0 and --ray-gpus >= 0")

    @property
    def blocks_directory(self) -> Path:
        if self.commit_dir is not None:
            return Path(self.commit_dir)
        from llm_mia.io.identity import cache_dir

        return cache_dir() / "ray-blocks"


def require_ray() -> Any:
    """The ``ray`` module, or a clear error with the install command."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise LlmMiaError(f"--engine ray needs Ray Data, which is not installed: {INSTALL}") from None
    return ray


def _check_reachable(address: str, timeout: float) -> None:
    """Refuse, within ``timeout`` seconds, a cluster address whose host does not answer on its port."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise LlmMiaError(f"--ray-address {address!r}: give host:port of the cluster head, ray://host:port, or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as error:
        raise LlmMiaError(
            f"--ray-address {address}: nothing answers at {host}:{port} within {timeout:g} s ({error}); start the "
            f"cluster (`ray start --head`) or check the address and the firewall"
        ) from None


def connect(settings: RaySettings) -> Any:
    """Join the cluster at ``settings.address``, or start a local one sized for the actors."""
    ray = require_ray()
    import logging

    logging.getLogger("ray").setLevel(logging.WARNING)  # Ray Data's progress lines are not this run's output
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True
    if ray.is_initialized():
        return ray
    common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if settings.address:
        _check_reachable(settings.address, settings.connect_timeout)
        ray.init(address=settings.address, **common)
    else:
        cpus = int(settings.actors * settings.cpus_per_actor + 1)
        ray.init(num_cpus=cpus, num_gpus=int(settings.actors * settings.gpus_per_actor) or None, **common)
    return ray


def _model_identity(spec: Any) -> str:
    """What identifies a model's numbers without loading it: its files' hashes (or, behind an API, its name)."""
    from llm_mia.backends.loading import capabilities_of
    from llm_mia.backends.local import resolve_model_directory
    from llm_mia.engine.stats_cache import directory_fingerprint

    if not capabilities_of(spec.name).files:
        return f"api:{spec.name}"
    return directory_fingerprint(resolve_model_directory(spec), spec.revision)


def run_key(settings: Any) -> str:
    """Everything besides the documents that decides a block's rows (module docstring)."""
    from llm_mia.engine.stats_cache import ENGINE_VERSION

    models = settings.models
    return json.dumps(
        {
            "engine": ENGINE_VERSION,
            "models": {role: _model_identity(spec) for role, spec in models.specs().items()},
            "dtype": models.dtype,
            "device": models.device,
            "api": None if models.api is None else models.api.root,
            "output_defense": models.output_defense,
            "scorers": [call.describe() for call in settings.calls],
            "extraction": settings.extraction.to_dict(),
        },
        sort_keys=True,
    )


def block_key(run: str, documents: Sequence[Document]) -> str:
    digest = hashlib.sha256(run.encode())
    for document in documents:
        digest.update(json.dumps([document.id, document.label, document.group, document.text]).encode())
    return digest.hexdigest()


class BlockScorer:
    """A Ray Data callable class: loads the models once per actor, scores one block per call."""

    def __init__(self, settings: Any, threads: int) -> None:
        from llm_mia.backends.loading import load_models
        from llm_mia.engine.threads import apply_threads
        from llm_mia.scoring.pipeline import ScoringContext

        apply_threads(threads)
        self.settings = settings
        self.models = load_models(settings.models)
        self.context = ScoringContext()  # this actor's share of the run: e.g. a conditioning prefix encoded once

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from llm_mia.engine.stats_cache import StatsCache
        from llm_mia.scoring.pipeline import compute_scores

        # opened per call: Ray may call from another thread than __init__'s, and a SQLite handle is per thread
        cache = None if self.settings.cache_path is None else StatsCache(self.settings.cache_path)

        out: dict[str, list[Any]] = {"block": [], "rows": [], "record": [], "model_calls": [], "pid": []}
        for k, payload in zip(batch["block"], batch["documents"], strict=True):
            documents = [Document(**d) for d in json.loads(payload)]
            calls = [0]

            def count(event: dict[str, Any], calls: list[int] = calls) -> None:
                calls[0] += event["event"] == "model call"

            scored = compute_scores(
                documents,
                self.settings.calls,
                models=self.models,
                settings=self.settings.extraction,
                cache=cache,
                observer=count,
                context=self.context,
            )
            out["block"].append(int(k))
            out["rows"].append(json.dumps(scored.rows))
            # what the run record states about this block: what the actor prepared for each scorer, batch budgets
            out["record"].append(json.dumps({"scorers": scored.scorers, "batch_tokens": scored.batch_tokens}))
            out["model_calls"].append(calls[0])
            out["pid"].append(os.getpid())
        return out


def _read_block(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def block_record_path(path: Path) -> Path:
    """Where a committed block's record (what its actor prepared, its batch budgets) is kept: beside its rows."""
    return path.with_name(path.name.removesuffix(".jsonl") + ".record.json")


def merged_scorers(settings: Any, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run record's scorers from the blocks' records, in block order: each call as
    ``ScorerCall.describe`` states it, with what the actors prepared for it: one record when every block
    prepared the same (a frequency table), else every block's (``{"blocks": [...]}``, as a run in one process
    names the neighbour file of each block)."""
    merged = []
    for index, call in enumerate(settings.calls):
        found = [record["scorers"][index].get("prepared") for record in records]
        found = [item for item in found if item is not None]
        if not found:
            merged.append(call.describe())
        elif all(item == found[0] for item in found):
            merged.append(call.describe(found[0]))
        else:
            merged.append(call.describe({"blocks": found}))
    return merged


def score_blocks(
    documents: Sequence[Document], settings: Any, ray_settings: RaySettings
) -> tuple[list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """Score ``documents`` on Ray actors, block by block, committing each block (module docstring); returns
    the rows in input order, what the run did (for the run record's ``execution``) and the scorers as the run
    record states them, with what the actors prepared (:func:`merged_scorers`)."""
    from dataclasses import replace

    size = settings.extraction.block_documents
    blocks = [list(documents[start : start + size]) for start in range(0, len(documents), size)]
    run = run_key(settings)
    directory = ray_settings.blocks_directory
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"block-{k:06d}-{block_key(run, block)[:32]}.jsonl" for k, block in enumerate(blocks)]
    rows: dict[int, list[dict[str, Any]]] = {k: _read_block(path) for k, path in enumerate(paths) if path.is_file()}
    records: dict[int, dict[str, Any]] = {
        k: json.loads(block_record_path(paths[k]).read_text(encoding="utf-8"))
        for k in rows
        if block_record_path(paths[k]).is_file()
    }
    committed_before = len(rows)
    todo = [k for k in range(len(blocks)) if k not in rows]
    model_calls, pids = 0, set()
    threads = settings.extraction.threads
    actor_threads = threads if isinstance(threads, int) else max(1, int(ray_settings.cpus_per_actor))
    if todo:
        ray = connect(ray_settings)
        # the cache's path is resolved here: an actor's default could be another machine's or another user's
        quiet = replace(
            settings, extraction=replace(settings.extraction, progress=False), cache=settings.cache_path or False
        )
        items = [
            {"block": k, "documents": json.dumps([d.__dict__ for d in blocks[k]], ensure_ascii=False)} for k in todo
        ]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        scored = dataset.map_batches(
            BlockScorer,
            fn_constructor_kwargs={"settings": quiet, "threads": actor_threads},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(ray_settings.actors, len(todo))),
            num_cpus=ray_settings.cpus_per_actor,
            num_gpus=ray_settings.gpus_per_actor or None,
        )  # Ray Data's actor pool restarts a killed actor and retries its block (max_restarts = -1 by default)
        for batch in scored.iter_batches(batch_size=1, batch_format="numpy"):
            for k, payload, record, calls, pid in zip(
                batch["block"], batch["rows"], batch["record"], batch["model_calls"], batch["pid"], strict=True
            ):
                block_rows = json.loads(str(payload))
                text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in block_rows)
                # the record first: a block whose rows are committed always has its record beside them

                def write(stream: Any, text: str) -> None:
                    stream.write(text)

                atomic_write(block_record_path(paths[int(k)]), partial(write, text=str(record)))
                atomic_write(paths[int(k)], partial(write, text=text))
                rows[int(k)] = block_rows
                records[int(k)] = json.loads(str(record))
                model_calls += int(calls)
                pids.add(int(pid))
    missing = [k for k in range(len(blocks)) if k not in rows]
    if missing:
        raise LlmMiaError(f"{len(missing)} block(s) came back from no actor; rerun to resume ({directory})")
    execution = {
        "engine": "ray",
        "address": ray_settings.address or "local cluster",
        "actors": ray_settings.actors,
        "actor_processes_seen": len(pids),
        "cpus_per_actor": ray_settings.cpus_per_actor,
        "gpus_per_actor": ray_settings.gpus_per_actor,
        "torch_threads_per_actor": actor_threads,
        "blocks": len(blocks),
        "block_documents": size,
        "blocks_committed_before": committed_before,
        "blocks_computed": len(todo),
        "model_calls": model_calls,
        "commit_dir": str(directory),
    }
    budgets: dict[str, set[int]] = {}
    for k in sorted(records):
        for name, budget in records[k].get("batch_tokens", {}).items():
            budgets.setdefault(name, set()).add(budget)
    if budgets:  # --batch-size auto: the token budget each model's actors chose (one value, or each one seen)
        execution["batch_tokens_auto"] = {
            name: next(iter(found)) if len(found) == 1 else sorted(found) for name, found in budgets.items()
        }
    scorers = merged_scorers(settings, [records[k] for k in sorted(records)])
    return [row for k in range(len(blocks)) for row in rows[k]], execution, scorers


RAY_FORMATS = {
    ".jsonl": "json",
    ".json": "json",
    ".jsonl.gz": "json",
    ".json.gz": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
}


def _format(path: str) -> str | None:
    lowered = path.lower().rstrip("/")
    return next((kind for suffix, kind in RAY_FORMATS.items() if lowered.endswith(suffix)), None)


def ray_readable(path: str) -> bool:
    """Whether Ray Data reads ``path`` (JSONL / JSON / Parquet / CSV, or anything behind a URL scheme such as
    ``s3://``); other inputs (text files, directories of them, saved datasets) are read here as usual."""
    return _format(path) is not None or "://" in path


def read_with_ray(path: str, columns: Any, ray_settings: RaySettings) -> list[Document]:
    """Read JSONL / Parquet / CSV with Ray Data from any filesystem pyarrow supports (local paths, ``s3://``,
    ``gs://``, ``hdfs://`` ...), in input order, into documents (the same columns as ``--input``)."""
    kind = _format(path)
    if kind is None:
        raise InputError(f"{path}: --engine ray reads .jsonl, .json, .parquet or .csv files (local or remote)")
    if "://" not in path and not Path(path).exists():
        raise InputError(f"{path}: no such file")
    ray = connect(ray_settings)
    dataset = {"json": ray.data.read_json, "parquet": ray.data.read_parquet, "csv": ray.data.read_csv}[kind](path)
    names = dataset.columns()
    if columns.text not in names:
        raise InputError(
            f"{path}: no {columns.text!r} column (columns: {', '.join(names)}); name it with --text-column"
        )
    documents = []
    for index, row in enumerate(dataset.iter_rows()):
        text = row[columns.text]
        if not isinstance(text, str):
            raise InputError(f"{path}: row {index + 1}: {columns.text!r} is {type(text).__name__}, not text")
        label = row.get(columns.label)
        group = row.get(columns.group)
        documents.append(
            Document(
                id=str(row[columns.id]) if columns.id in row and row[columns.id] is not None else str(index),
                text=text,
                label=None if label is None else int(label),
                group=None if group is None else str(group),
            )
        )
    ids = [d.id for d in documents]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{path}: id {duplicate!r} appears more than once; ids must be unique")
    return documents
