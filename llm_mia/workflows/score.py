"""The scoring workflow: documents in, one score row per document and a run record out.

Used by ``llm-mia score``, ``llm_mia.score``, evaluation, dataset-level tests and the Ray Data map step. Under
a multi-process launcher (``torchrun``, ``accelerate launch``) every process takes part: each loads the models
on its own device, computes its share of the batches into the shared stats cache, and every process gets all
rows; only the main process should write them (``ScoreRun.is_main``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llm_mia.backends.loading import load_models
from llm_mia.backends.local import LoadedModel
from llm_mia.backends.remote.model import RemoteModel
from llm_mia.engine.threads import apply_threads
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_texts
from llm_mia.io.records import run_record, write_run_record
from llm_mia.io.score_files import write_rows
from llm_mia.scoring.settings import ScoringSettings


@dataclass
class ScoreRun:
    """The rows of a scoring run (input order), its run record, and whether this is the main process."""

    rows: list[dict[str, Any]]
    record: dict[str, Any]
    is_main: bool = True

    @property
    def frame(self) -> Any:
        """The rows as a pandas DataFrame (one row per document; scores NaN where unavailable)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    @property
    def n_not_ok(self) -> int:
        return sum(row["status"] != "ok" for row in self.rows)

    def write(self, path: str | Path) -> tuple[Path, Path]:
        """Write the rows (``.jsonl`` or ``.csv``) and the run record beside them; returns both paths."""
        return write_rows(self.rows, path), write_run_record(path, self.record)


def check_documents(documents: Sequence[Document], *, source: str) -> None:
    """Refuse an input with nothing to score before any model is loaded."""
    if not documents:
        raise InputError(f"{source}: no documents; nothing to score")
    if not any(document.text.strip() for document in documents):
        raise InputError(f"{source}: all {len(documents)} document(s) are empty or whitespace-only; nothing to score")


def score_documents(
    documents: Sequence[Document],
    settings: ScoringSettings | None = None,
    *,
    models: Mapping[str, LoadedModel | RemoteModel] | None = None,
    source: str = "input",
    tool: str = "llm-mia score",
    observer: Any = None,
) -> ScoreRun:
    """Score ``documents`` with the settings' scorers; higher score = more likely a member.

    ``models``: already loaded models by role (``target``, ``reference``) to use instead of loading the ones
    the settings name. ``source`` names the input in messages and the run record. ``observer``: hears of every
    model call (``llm_mia.scoring.pipeline.extract_views``). Refuses an empty input (or one where every text is empty)
    before loading anything. With ``settings.ray``, the documents are scored on Ray actors
    (``llm_mia.scoring.ray_engine``; ``models`` is then not used: every actor loads its own).
    """
    from llm_mia.engine.distributed import current_shard, is_main_process
    from llm_mia.engine.extract import AUTO_BUDGETS
    from llm_mia.engine.stats_cache import StatsCache
    from llm_mia.scoring.pipeline import compute_scores

    settings = settings or ScoringSettings()
    calls = settings.calls
    check_documents(documents, source=source)
    inputs = {"source": source, "documents": len(documents), "sha256": sha256_texts([d.text for d in documents])}
    if settings.ray is not None:
        return _score_on_ray(documents, settings, inputs=inputs, tool=tool, observer=observer)
    shard = current_shard(settings.models.device)
    threads = apply_threads(settings.extraction.threads)
    if models is None:
        models = load_models(settings.models)
    cache_path = settings.cache_path
    cache = None if cache_path is None else StatsCache(cache_path)
    extraction = settings.extraction
    if not is_main_process(shard):
        extraction = replace(extraction, progress=False)
    rows, _ = compute_scores(
        documents, calls, models=models, settings=extraction, cache=cache, shard=shard, observer=observer
    )
    record = run_record(
        tool,
        inputs=inputs,
        models={role: model.describe() for role, model in models.items()},
        scorers=[call.describe() for call in calls],
        settings=settings.extraction.to_dict(),
        execution={
            "engine": "local",
            "processes": 1 if shard is None else shard.count,
            "torch_threads": threads,
            **(
                {"batch_tokens_auto": {m.spec.name: AUTO_BUDGETS.get(m.spec.name) for m in models.values()}}
                if settings.extraction.batch_size == "auto"
                else {}
            ),
            "cache": None
            if cache is None
            else {
                "path": str(cache.path),
                "hits": cache.hits,
                "stored": cache.stored,
                # windows of long documents a killed run had finished, read back; and windows kept for a resume
                "window_hits": cache.window_hits,
                "windows_stored": cache.windows_stored,
            },
            "random_seed": "none used: scoring is deterministic",
        },
    )
    return ScoreRun(rows=rows, record=record, is_main=is_main_process(shard))


def _score_on_ray(
    documents: Sequence[Document], settings: ScoringSettings, *, inputs: dict[str, Any], tool: str, observer: Any
) -> ScoreRun:
    """:func:`score_documents` on Ray actors (``llm_mia.scoring.ray_engine``): the same rows, in input order."""
    from llm_mia.backends.local import resolve_model_directory
    from llm_mia.scoring.ray_engine import score_blocks

    if observer is not None:
        raise LlmMiaError(
            "--engine ray cannot log every model call in one query log (the calls happen on the actors); "
            "run evidence and API-logged scoring in one process"
        )
    rows, execution = score_blocks(documents, settings, settings.ray)
    models = {
        role: {"name": spec.name, "revision": spec.revision, "dtype": spec.dtype, "device": spec.device}
        | ({} if spec.name.startswith("api:") else {"directory": str(resolve_model_directory(spec))})
        for role, spec in settings.models.specs().items()
    }
    record = run_record(
        tool,
        inputs=inputs,
        models=models,
        scorers=[call.describe() for call in settings.calls],
        settings=settings.extraction.to_dict(),
        execution={**execution, "random_seed": "none used: scoring is deterministic"},
    )
    return ScoreRun(rows=rows, record=record)
