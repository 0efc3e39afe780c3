"""The canary test: was a model trained on the published canaries? An exact rank test per canary, and Fisher's
combination over canaries.

Every canary and every sibling is scored once with one scorer (``loss`` by default; any registered scorer,
higher = more likely trained on) through the extraction engine and the stats cache. Per canary: its rank among
its S siblings (ties against it), the exact p-value rank / (S + 1) and the exposure log2(S + 1) - log2(rank)
(``llm_mia.canaries.ranks``). Across the N canaries: Fisher's combined p-value (valid: the canaries are
independent draws, so their p-values are independent under the null). The secret file's SHA-256 is checked
against the commitment before anything is scored.

Assumption stated with the verdict: the published canary was chosen at random among the S + 1 draws of one
generator after drawing (``llm-mia canary make`` does this), and nothing but training on the canary makes the
model favour it over its siblings. Guarantee: under "not trained on the canaries", each p-value is exact
(P(p <= t) <= t) and so is the combined one; per canary, not per work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llm_mia.backends.loading import ModelSettings
from llm_mia.canaries.make import all_texts, read_secret, sibling_warning
from llm_mia.canaries.ranks import exposure, fisher_combined, rank_p_value, smallest_p_value
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.settings import ScoringSettings

ASSUMPTION = (
    "the published canary was drawn with its siblings from one generator and chosen among them at random after "
    "drawing; under 'not trained on the canaries' its rank is uniform"
)


@dataclass(frozen=True)
class CanaryTestSettings:
    """Model, scorer (one), significance level, the secret file's commitment (a SHA-256, or its JSON file), batch
    size, stats cache and torch threads (``llm_mia.engine.threads``)."""

    models: ModelSettings = field(default_factory=ModelSettings)
    scorer: str = "loss"
    alpha: float = 0.05
    commitment: str | None = None
    batch_size: int | Literal["auto"] = 8
    cache: bool | str | Path = True
    threads: int | str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise LlmMiaError(f"alpha {self.alpha}: need 0 < alpha < 1")
        ScoringSettings(models=self.models, scorers=(self.scorer,))  # an unknown scorer fails here


def run_canary_test(secret: Path, settings: CanaryTestSettings, *, observer: Any = None) -> dict[str, Any]:
    """Score the canaries of ``secret`` and their siblings; return per-canary ranks and p-values, the combined
    p-value, the verdict in words, and what it rests on (see the module docstring). ``observer`` hears of every
    model call (an evidence run's query log)."""
    from llm_mia.backends.loading import load_models
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.workflows.score import score_documents

    record = read_secret(secret, settings.commitment)
    siblings = record["settings"]["siblings"]
    texts = all_texts(record)
    models = load_models(settings.models)
    target = models["target"]
    context = getattr(target, "context_length", None)
    if context is not None and getattr(target, "tokenizer", None) is not None:
        longest = max(len(target.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
        if longest + len(getattr(target, "prefix_ids", [])) > context:
            raise InputError(
                f"{secret}: the longest canary or sibling has {longest} tokens and the model's context holds "
                f"{context}; make canaries that fit (a canary scored in windows would not be one sequence)"
            )
    documents = [Document(id=f"t{i}", text=t) for i, t in enumerate(texts)]
    scoring = ScoringSettings(
        models=settings.models,
        scorers=(settings.scorer,),
        extraction=ExtractionSettings(batch_size=settings.batch_size, threads=settings.threads, progress=False),
        cache=settings.cache,
    )
    run = score_documents(
        documents, scoring, models=models, source=str(secret), tool="llm-mia canary test", observer=observer
    )
    column = scoring.calls[0].column
    scores = [row.get(column) for row in run.rows]
    per = siblings + 1
    results = []
    for i, canary in enumerate(record["canaries"]):
        group = [s for s in scores[i * per : (i + 1) * per] if s is not None]
        if len(group) < per:
            raise LlmMiaError(f"{canary['id']}: a canary or sibling got no {column} score; see the status column")
        rank, p = rank_p_value(group[0], group[1:])
        results.append(
            {
                "canary": canary["id"],
                "score": group[0],
                "rank": rank,
                "p_value": p,
                "exposure": exposure(rank, siblings),
            }
        )
    combined = fisher_combined([r["p_value"] for r in results])
    detected = sum(r["p_value"] <= settings.alpha for r in results)
    return {
        "secret_sha256": record["sha256"],
        "commitment_checked": settings.commitment is not None,
        "scorer": column,
        "canaries": len(results),
        "siblings_per_canary": siblings,
        "smallest_possible_p": smallest_p_value(siblings),
        "alpha": settings.alpha,
        "detected": detected,
        "combined_p_value": combined,
        "verdict": verdict_line(combined, detected, len(results), settings.alpha),
        "warning": sibling_warning(siblings),
        "assumption": ASSUMPTION,
        "guarantee": "exact p-values per canary and Fisher-combined over canaries, under the null of no training on "
        "them",
        "per_canary": results,
        "model": run.record.get("models", {}),
    }


def verdict_line(combined: float, detected: int, count: int, alpha: float) -> str:
    """The verdict in plain words, with the precision the test carries (two significant figures).

    >>> verdict_line(0.0004, 3, 10, 0.05)
    'consistent with training on the canaries: combined p = 0.0004 (3 of 10 canaries at p <= 0.05)'
    """
    found = f"{detected} of {count} canaries at p <= {alpha:g}"
    if combined <= alpha:
        return f"consistent with training on the canaries: combined p = {combined:.2g} ({found})"
    return f"no evidence of training on the canaries: combined p = {combined:.2g} ({found})"


@dataclass
class MadeCanaries:
    """``llm-mia canary make``: the secret file and its public commitment, written. ``record``: the secret record
    (canaries, siblings, settings); ``digest``: the secret file's SHA-256 (the commitment); ``warning``: why the
    siblings cannot give a small p-value, when they cannot."""

    record: dict[str, Any]
    secret: Path
    commitment: Path
    digest: str
    warning: str | None

    def summary_lines(self) -> list[str]:
        settings = self.record["settings"]
        return [
            *([f"warning: {self.warning}"] if self.warning else []),
            f"wrote {settings['count']} canaries with {settings['siblings']} siblings each to {self.secret} "
            "(keep it private)",
            f"commitment: SHA-256 {self.digest} (in {self.commitment}; publish or timestamp it now)",
        ]


def make_canary_files(settings: Any, secret: Path) -> MadeCanaries:
    """Draw the canaries and their siblings (``llm_mia.canaries.make.CanarySettings``), write the secret file
    (never over an existing one) and the commitment beside it (``SECRET.commitment.json``)."""
    import json

    from llm_mia.canaries.make import commitment_record, make_canaries, write_secret

    if secret.exists():
        raise InputError(f"{secret} exists: a secret file is never overwritten (its commitment may be published)")
    warning = sibling_warning(settings.siblings)
    record = make_canaries(settings)
    digest = write_secret(record, secret)
    commitment = secret.with_name(secret.name + ".commitment.json")
    commitment.write_text(json.dumps(commitment_record(secret, digest, record), indent=1) + "\n", encoding="utf-8")
    return MadeCanaries(record=record, secret=secret, commitment=commitment, digest=digest, warning=warning)


@dataclass
class PlantedCanaries:
    """``llm-mia canary plant``: the planted copy and its log (``OUTPUT.plant-log.json``: where every copy went)."""

    record: dict[str, Any]
    output: Path
    log: Path
    repetitions: int

    def summary_lines(self) -> list[str]:
        return [
            f"planted {len(self.record['canaries'])} canaries x {self.repetitions} into {self.output}; log: {self.log}"
        ]


def plant_canary_files(secret: Path, into: str | Path, output: Path, *, repetitions: int, mode: str) -> PlantedCanaries:
    """Copy the work or corpus ``into`` to ``output`` with every canary of ``secret`` planted ``repetitions``
    times (``llm_mia.canaries.plant``), and write the log of where each copy went beside it."""
    import json

    from llm_mia.canaries.plant import plant_canaries

    log_path = output.with_name(output.name + ".plant-log.json")
    if log_path.exists():
        raise InputError(f"{log_path} exists: plant into a new output")
    record = read_secret(secret, None)
    log = plant_canaries(record, Path(into), output, repetitions=repetitions, mode=mode)
    payload = {"secret_sha256": record["sha256"], "source": str(into), "mode": mode, "copies": log}
    log_path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return PlantedCanaries(record=record, output=output, log=log_path, repetitions=repetitions)


@dataclass
class CanaryTest:
    """``llm-mia canary test``: ``record`` holds what :func:`run_canary_test` returns (ranks, p-values, verdict)."""

    record: dict[str, Any]

    def summary_lines(self) -> list[str]:
        result = self.record
        lines = [f"warning: {result['warning']}"] if result["warning"] else []
        if not result["commitment_checked"]:
            lines.append(
                "warning: no --commitment given: the secret file's hash was not checked against a published one"
            )
        lines.append(f"secret file SHA-256 {result['secret_sha256']}")
        lines += [
            f"  {row['canary']}: rank {row['rank']} of {result['siblings_per_canary'] + 1}, p = {row['p_value']:.3g}, "
            f"exposure {row['exposure']:.1f} bits"
            for row in result["per_canary"]
        ]
        return [*lines, result["verdict"], f"assumption: {result['assumption']}"]

    def write(self, path: str | Path) -> list[Path]:
        """The result as JSON."""
        import json

        path = Path(path)
        path.write_text(json.dumps(self.record, indent=1, default=str) + "\n", encoding="utf-8")
        return [path]


def canary_test(secret: Path, settings: CanaryTestSettings) -> CanaryTest:
    """:func:`run_canary_test`, as a result a command prints and writes."""
    return CanaryTest(run_canary_test(secret, settings))
