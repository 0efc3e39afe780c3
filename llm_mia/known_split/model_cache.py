"""The cache of trained known-split models (:func:`cached_training`): each run under
``<cache>/bench/models/<name>-<key>/`` (``key`` hashes everything that decides the weights) with its record,
``training.json``: config, seed, data manifest, base model identity, per-epoch mean loss, wall time, versions
and the SHA-256 of every saved file. A complete record is re-used after its file hashes are checked; a run is
written to a staging directory renamed into place, so an interrupted run leaves nothing that looks complete."""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.backends.memory import release_freed_memory
from llm_mia.errors import LlmMiaError
from llm_mia.io.identity import cache_dir, hash_directory, sha256_json_key, versions

logger = logging.getLogger(__name__)

TRAINING_RECORD = "training.json"
RECORD_VERSION = 1


def _environment() -> dict[str, str | None]:
    """Package versions, torch threads and the processor, for the training record."""
    import torch

    return {
        **versions(),
        "torch_threads": str(torch.get_num_threads()),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
    }


@dataclass(frozen=True)
class TrainedModels:
    """A cached training run: the snapshot directory of every saved epoch and the run record."""

    directory: Path
    snapshots: dict[int, Path]
    record: dict[str, Any]
    reused: bool


def _check_record(directory: Path, epochs: Sequence[int], verify: bool) -> dict[str, Any] | None:
    record_path = directory / TRAINING_RECORD
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record.get("status") != "complete":
        return None
    for epoch in epochs:
        snapshot = directory / f"epoch-{epoch}"
        expected = record["snapshots"].get(str(epoch), {}).get("files")
        if expected is None or not snapshot.is_dir():
            return None
        if verify and hash_directory(snapshot) != expected:
            raise LlmMiaError(
                f"{snapshot}: files differ from the hashes recorded at training time; delete {directory} to retrain"
            )
    return record


def cached_training(
    name: str,
    *,
    identity: dict[str, Any],
    epochs: Sequence[int],
    train: Callable[[Path, Callable[[int, Any, Any, float], None]], dict[str, Any]],
    cache_root: Path | None = None,
    use_cache: bool = True,
    verify: bool = True,
) -> TrainedModels:
    """Run ``train`` once per ``identity`` and keep its snapshots; later calls re-use them.

    ``identity``: everything that decides the weights (recipe, data manifest, seed, base model); its hash
    names the directory. ``train(staging, save)`` trains, calling ``save(epoch, model, tokenizer, loss)`` for
    each snapshot, and returns extra record fields. Writes go to a staging directory renamed into place,
    so an interrupted run leaves nothing that looks complete.
    """

    payload = json.dumps(identity, sort_keys=True, default=str).encode("utf-8")
    key = sha256_json_key(payload)
    root = (cache_root or cache_dir()) / "bench" / "models"
    directory = root / f"{name}-{key}"
    if use_cache:
        record = _check_record(directory, epochs, verify)
        if record is not None:
            logger.info("re-using trained models in %s", directory)
            snapshots = {e: directory / f"epoch-{e}" for e in epochs}
            return TrainedModels(directory, snapshots, record, reused=True)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=root))
    snapshot_records: dict[str, Any] = {}

    def save(epoch: int, model: Any, tokenizer: Any, loss: float) -> None:
        target = staging / f"epoch-{epoch}"
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        snapshot_records[str(epoch)] = {
            "mean_training_loss": None if loss != loss else loss,
            "files": hash_directory(target),
        }

    started = time.perf_counter()
    try:
        extra = train(staging, save)
        release_freed_memory()  # the model, its gradients and optimizer state are gone: so is their memory
        record = {
            "format": "llm-mia training",
            "version": RECORD_VERSION,
            "name": name,
            "key": key,
            "status": "complete",
            **identity,
            **extra,
            "snapshots": snapshot_records,
            "wall_seconds": round(time.perf_counter() - started, 1),
            "environment": _environment(),
        }
        (staging / TRAINING_RECORD).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    snapshots = {e: directory / f"epoch-{e}" for e in epochs}
    return TrainedModels(directory, snapshots, record, reused=False)
