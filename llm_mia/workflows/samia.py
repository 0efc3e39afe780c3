"""The SaMIA workflow: texts in, one score row per text (and every sampled continuation) out.

Each text is cut into prefix and suffix (``llm_mia.methods.samia``), the target model continues the prefix ``samples``
times (the model's ``sample``, ``llm_mia.backends.protocol.Model``: a white-box model through
``llm_mia.engine.generation``, a model behind an API through ``llm_mia.backends.remote.sampling``, responses cached),
and the continuations are compared with the suffix. Rows carry ``samia`` and ``samia_zlib`` with id, label, group and
status as score rows do; the continuations are returned too, so that they can be kept with the run (``SamiaRun.write``
puts them beside the rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mia.backends.loading import ModelSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_text, sha256_texts
from llm_mia.io.records import run_record, write_run_record
from llm_mia.io.score_files import write_rows
from llm_mia.methods.samia import CHAT_INSTRUCTION, samia_scores, split_text

STATUS_TOO_SHORT = "too short: SaMIA needs at least one word in the prefix and one in the suffix"


@dataclass(frozen=True)
class SamiaSettings:
    """SaMIA's settings (``llm_mia.methods.samia``). ``max_new_tokens`` None: 2 per suffix word + 8. ``cache`` keeps API
    responses (True: beside the stats cache; a path: that ``responses.sqlite``; False: none)."""

    models: ModelSettings = field(default_factory=ModelSettings)
    samples: int = 10
    prefix_ratio: float = 0.5
    max_new_tokens: int | None = None
    seed: int = 0
    cache: bool | str | Path = True

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise LlmMiaError(f"samples must be >= 1, got {self.samples}")
        if not 0 < self.prefix_ratio < 1:
            raise LlmMiaError(f"prefix_ratio must be strictly between 0 and 1, got {self.prefix_ratio}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise LlmMiaError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "prefix_ratio": self.prefix_ratio,
            "max_new_tokens": self.max_new_tokens or "2 per suffix word + 8",
            "seed": self.seed,
            "temperature": 1.0,
            "top_k": "the endpoint's own" if self.models.remote_names else 50,
        }


@dataclass
class SamiaRun:
    """SaMIA's rows (a score file: ``samia``, ``samia_zlib``), every continuation, and the run record."""

    rows: list[dict[str, Any]]
    continuations: list[dict[str, Any]]
    record: dict[str, Any]

    def write(self, path: str | Path) -> list[Path]:
        """The rows, the run record, and ``<path>.samples.jsonl`` with every continuation."""
        samples = Path(f"{path}.samples.jsonl")
        samples.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self.continuations))
        return [write_rows(self.rows, path), write_run_record(path, self.record), samples]

    def summary_lines(self) -> list[str]:
        """One line per text: its scores and status, then how to read them."""
        from llm_mia.io.tables import cell, text_table

        columns = ["id", "samia", "samia_zlib", "status"]
        table = text_table(columns, [[cell(row[c], fmt=".3f") for c in columns] for row in self.rows])
        return [*table, "higher = more of the text's second half reproduced (a ranking, not a verdict)"]


def text_seed(seed: int, text: str) -> int:
    """A text's own sampling seed: from the run's seed and the text's SHA-256 (not its position in the run)."""
    return int(hashlib.sha256(f"{seed}\0{text}".encode()).hexdigest()[:15], 16)


def run_samia(documents: Sequence[Document], settings: SamiaSettings, *, source: str = "input") -> SamiaRun:
    """SaMIA scores for ``documents`` under the settings' target model (module docstring)."""
    from llm_mia.backends.loading import open_model
    from llm_mia.backends.remote.responses import response_cache
    from llm_mia.engine.extract import ExtractionContext

    if not documents:
        raise LlmMiaError(f"{source}: no documents")
    model = open_model(settings.models.specs()["target"], settings.models.api)
    engine = ExtractionContext()
    # an endpoint keeps its samples (a rerun sends nothing twice); a local model has none to keep
    responses = response_cache(settings.cache) if model.offers.endpoint else None

    def sample(prompt: str, budget: int, seed: int) -> list[str]:
        return model.sample(
            prompt,
            samples=settings.samples,
            max_new_tokens=budget,
            seed=seed,
            engine=engine,
            chat_instruction=CHAT_INSTRUCTION,
            cache=responses,
        )

    described = model.describe()
    rows, continuations = [], []
    for document in documents:
        prefix, suffix = split_text(document.text, settings.prefix_ratio)
        row: dict[str, Any] = {
            "id": document.id,
            "label": document.label,
            "group": document.group,
            "status": "ok",
            "text_sha256": sha256_text(document.text),
            "prefix_words": len(prefix.split()),
            "suffix_words": len(suffix),
            "samia": None,
            "samia_zlib": None,
        }
        if not prefix or not suffix:
            row["status"] = STATUS_TOO_SHORT
        else:
            budget = settings.max_new_tokens or 2 * len(suffix) + 8
            try:
                drawn = sample(prefix, budget, text_seed(settings.seed, document.text))
            except LlmMiaError as error:
                raise LlmMiaError(
                    f"document {document.id!r}: {error} (responses received so far are kept: a rerun resumes)"
                ) from None
            row["samia"], row["samia_zlib"] = samia_scores(drawn, suffix)
            continuations.append({"id": document.id, "prefix": prefix, "continuations": drawn})
        rows.append(row)
    record = run_record(
        "llm-mia samia",
        inputs={"source": source, "documents": len(documents), "sha256": sha256_texts([d.text for d in documents])},
        models={"target": described},
        scorers=[
            {"column": "samia", "scorer": "samia", "params": settings.to_dict()},
            {"column": "samia_zlib", "scorer": "samia_zlib", "params": settings.to_dict()},
        ],
        settings=settings.to_dict(),
        execution={"random_seed": settings.seed, "per_text_seed": "sha256(seed, text): independent of the run"},
    )
    return SamiaRun(rows=rows, continuations=continuations, record=record)
