"""The whole ``llm-mia score`` job: an optional precision check first, the scoring run, and for a model behind an
API a hash-chained log of every request sent; or, for a dry run, what the run would send.

:func:`run_score_job` returns a :class:`ScoreJob`: the rows and run record of
:func:`llm_mia.workflows.score.score_documents`, with the precision check and the query log recorded in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.io.documents import Document
from llm_mia.io.identity import sha256_texts
from llm_mia.io.score_files import META_COLUMNS
from llm_mia.io.tables import cell, text_table
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.workflows.precision import PrecisionCheck, precision_check
from llm_mia.workflows.score import ScoreRun, score_documents


@dataclass
class ScoreJob:
    """A scoring job. ``run``: the rows and run record; ``precision``: the precision check run first (None
    without one); ``query_log``: the file every API request was logged in, with ``query_lines`` lines (None when
    no model is behind an API or no log was asked for)."""

    run: ScoreRun
    precision: PrecisionCheck | None = None
    query_log: Path | None = None
    query_lines: int = 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.run.rows

    @property
    def record(self) -> dict[str, Any]:
        return self.run.record

    @property
    def is_main(self) -> bool:
        """False in the other processes of a multi-process launch: only the main one writes."""
        return self.run.is_main

    def summary_lines(self) -> list[str]:
        """What the precision check found (nothing without one)."""
        return [] if self.precision is None else self.precision.lines()

    def table_lines(self) -> list[str]:
        """A compact table: id, tokens scored, each score, status."""
        rows = self.rows
        columns = ["id", "n_scored", *[c for c in rows[0] if c not in META_COLUMNS], "status"]
        lines = text_table(columns, [[cell(row[c], fmt=".4f") for c in columns] for row in rows])
        return [*lines, "higher score = more likely a member of the model's training data (a ranking, not a verdict)"]

    def write(self, path: str | Path) -> list[Path]:
        """The rows (``.jsonl`` or ``.csv``) and the run record beside them."""
        return list(self.run.write(path))


def run_score_job(
    documents: Sequence[Document],
    settings: ScoringSettings,
    *,
    source: str,
    query_log: str | Path | None = None,
    precision_check_size: int | None = None,
) -> ScoreJob:
    """Score ``documents``: first, with ``precision_check_size``, a precision check on a seeded sample of that
    many (``llm_mia.workflows.precision``; the labels read where every document has one); then every document.
    ``query_log``: where to log every request to a model behind an API, hash-chained from the SHA-256 of the
    input texts (nothing is logged when every model runs here). Both are recorded in the run record. A failed
    run leaves a log of what was sent before the failure, or no file at all."""
    from llm_mia.evidence.query_log import QueryLog

    check = None
    if precision_check_size is not None:
        known = [d.label for d in documents if d.label is not None]
        labels = known if len(known) == len(documents) else None
        check = precision_check(documents, settings, size=precision_check_size, labels=labels)
    log = None
    if query_log is not None and settings.models.remote_names:
        anchor = sha256_texts([d.text for d in documents])  # binds the log to the texts scored
        log = QueryLog(query_log, anchor=anchor, model_hashes={})
    try:
        run = score_documents(documents, settings, source=source, observer=None if log is None else log.record)
    except BaseException:
        if log is not None:
            log.close(keep_empty=False)
        raise
    job = ScoreJob(run, precision=check)
    if log is not None:
        logged = log.close()
        run.record["query_log"] = {"path": str(log.path), "anchor": "sha256 of the input texts", **logged}
        job.query_log, job.query_lines = Path(log.path), logged["lines"]
    if check is not None:
        run.record["precision_check"] = check.to_dict()
    return job


def request_estimate_lines(
    documents: Sequence[Document], settings: ScoringSettings, *, price_per_million_tokens: float | None = None
) -> list[str]:
    """What a run would send to each model behind an API (requests, tokens, the cost at the price given); sends
    nothing."""
    from llm_mia.scoring.request_estimate import estimate_requests

    specs = settings.models.specs()
    roles = {role: spec.name for role, spec in specs.items() if spec.name in settings.models.remote_names}
    if not roles:
        return ["--dry-run counts requests to models behind an API (--model api:NAME); these models run locally"]
    return [
        line
        for estimate in estimate_requests(documents, settings.calls, roles=roles)
        for line in estimate.describe(price_per_million_tokens)
    ]
