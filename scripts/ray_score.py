"""Score a corpus with Ray Data: llm-mia's extraction as the map step of a distributed data engine.

Each actor loads the model once (``__init__``) and scores whole batches of rows with the same code as
``llm-mia score`` (``llm_mia.scoring.compute_scores``); Ray shards the dataset over actors, on one
machine or a cluster. Per-document numbers do not depend on how rows are grouped into batches (within
float rounding), so the result equals a single-process run.

    pip install "ray[data]==2.60.0"
    python scripts/ray_score.py --input corpus.jsonl --output scores_dir/ --model smollm2-135m --actors 2

Input: JSONL with a ``text`` column (and optional ``id``). Output: a directory of Parquet files, one row
per document with every score (``ray.data.read_parquet`` or pandas read it back).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np


class ScoreBatch:
    """A Ray Data callable class: one model copy per actor, one ``map_batches`` call per batch of rows."""

    def __init__(self, model: str, scorers: list[str] | None, batch_size: int) -> None:
        from llm_mia.settings import ExtractionSettings, ModelSettings, ScoringSettings
        from llm_mia.workflows.score import load_models

        self.settings = ScoringSettings(
            models=ModelSettings(model=model),
            scorers=tuple(scorers) if scorers else None,
            extraction=ExtractionSettings(batch_size=batch_size, progress=False),
            cache=False,
        )
        self.models = load_models(self.settings.models)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from llm_mia.documents import Document
        from llm_mia.scoring import compute_scores

        ids = batch["id"] if "id" in batch else [None] * len(batch["text"])
        documents = [Document(id=str(i), text=str(t)) for i, t in zip(ids, batch["text"], strict=True)]
        rows, _ = compute_scores(documents, self.settings.calls, models=self.models, settings=self.settings.extraction)
        return {column: [row[column] for row in rows] for column in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True, help="directory for the Parquet output")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--scorers", nargs="+")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--rows-per-call", type=int, default=64)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=args.actors + 1, include_dashboard=False)  # one CPU left for reading and writing
    dataset = ray.data.read_json(args.input)
    if "id" not in dataset.columns():
        raise SystemExit(f"{args.input}: give every row an 'id' so results can be joined back to the input")
    scored = dataset.map_batches(
        ScoreBatch,
        fn_constructor_kwargs={"model": args.model, "scorers": args.scorers, "batch_size": 8},
        batch_size=args.rows_per_call,
        concurrency=args.actors,
        num_cpus=1,
    )
    scored.write_parquet(args.output)
    print(f"wrote {scored.count()} rows to {args.output}")


if __name__ == "__main__":
    main()
