"""Shadow-model workflows: train a population of models, score it into a documents x models matrix, evaluate the
attacks on the target; what ``llm-mia shadow train|score|evaluate`` call.

- :func:`train_shadow_models` (from :mod:`llm_mia.shadow.train`): population, inclusion matrix, K models + target.
- :func:`score_shadow_models`: every model scores every population document and every z document once, through
  the extraction engine and the stats cache (a rerun reads the cache); the signals are saved as a
  :class:`~llm_mia.shadow.signals.SignalMatrix` (``DIR/signals.npz`` + ``.json``; ``DIR/signals-z.*`` for z).
- :func:`evaluate_shadow_attacks`: for each K asked for, the first K shadow models are the attacks' population
  (balanced for every even K by the paired inclusion design), each attack is fitted on them and scores the
  target's column; AUROC with its interval and TPR at each FPR with n (:func:`llm_mia.stats.metrics.evaluate_scorer`),
  beside the target-only baselines (loss, min_k_plus_plus). The target's inclusion column is used only as the
  labels of the evaluation, never by an attack.
"""

from __future__ import annotations

import logging
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError
from llm_mia.shadow.signals import SignalMatrix, signals_from_rows
from llm_mia.shadow.train import TARGET, ShadowSettings, load_population, train_shadow_models

logger = logging.getLogger(__name__)

__all__ = [
    "ShadowSettings",
    "evaluate_shadow_attacks",
    "load_population",
    "score_shadow_models",
    "train_shadow_models",
]

SIGNALS_STEM = "signals"
Z_STEM = "signals-z"
BASELINES = ("loss", "min_k_plus_plus")


def score_shadow_models(
    directory: str | Path,
    *,
    signals: Sequence[str] = (),
    batch_size: int = 8,
    device: str = "cpu",
    cache: bool | str | Path = True,
    progress: bool = True,
    echo: Callable[[str], None] = logger.info,
) -> tuple[SignalMatrix, SignalMatrix]:
    """Score every population and z document with every model (shadows, then the target) and save the matrices.

    ``signals``: scorers to keep as signals beside ``mean_ll``, ``n_tokens`` and the baselines (any registered
    scorer that reads only the model's own pass). One extraction per (model, document), read from the stats
    cache where it was computed before.
    """
    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.engine.stats_cache import StatsCache
    from llm_mia.scoring.pipeline import compute_scores
    from llm_mia.scoring.scorers import parse_scorer_specs

    population = load_population(directory)
    names = [*population.shadow_names, TARGET]
    missing = [name for name in names if not population.model_dirs.get(name, Path("/nonexistent")).is_dir()]
    if missing:
        raise InputError(f"{directory}: models not trained yet: {', '.join(missing)}; run `llm-mia shadow train`")
    wanted = list(dict.fromkeys([*BASELINES, *signals]))
    calls = parse_scorer_specs(wanted, has_reference=False)
    for call in calls:
        if call.scorer.views != ("target",):
            raise InputError(f"signal {call.column!r} needs another model or view; use scorers of the model's own pass")
    documents = [*population.population, *population.z_documents]
    stats_cache = None if cache is False else StatsCache(None if cache is True else Path(cache))
    settings = ExtractionSettings(batch_size=batch_size, progress=progress)
    columns: dict[str, list[np.ndarray]] = {}
    tokenizers = []
    for name in names:
        mark = time.perf_counter()
        model = load_model(ModelSpec(name=str(population.model_dirs[name]), device=device))
        scored = compute_scores(documents, calls, models={"target": model}, settings=settings, cache=stats_cache)
        rows, stats = scored.rows, scored.stats
        tokenizers.append(stats["target"][0].tokenizer_id if stats["target"] else "")
        for signal, column in signals_from_rows(rows, [c.column for c in calls]).items():
            columns.setdefault(signal, []).append(column)
        echo(f"{name}: {len(documents)} documents scored in {time.perf_counter() - mark:.1f} s")
        del model
    if len(set(tokenizers)) > 1:
        common = max(set(tokenizers), key=tokenizers.count)
        odd = [
            f"{name} ({tokenizer})" for name, tokenizer in zip(names, tokenizers, strict=True) if tokenizer != common
        ]
        raise InputError(
            f"the models do not share a tokenizer ({', '.join(odd)} differ from the others' {common}), so their "
            "mean token log-likelihoods are not comparable; the shadow recipes train every model with one "
            "tokenizer: train the target with the population's recipe"
        )
    values = {signal: np.column_stack(per_model) for signal, per_model in columns.items()}
    n = len(population.population)
    inclusion = np.column_stack([population.inclusion, population.target_members])
    matrix = SignalMatrix(
        ids=tuple(d.id for d in population.population),
        models=tuple(names),
        values={signal: v[:n] for signal, v in values.items()},
        inclusion=inclusion,
        tokenizers=tuple(tokenizers),
    )
    z_matrix = SignalMatrix(
        ids=tuple(d.id for d in population.z_documents),
        models=tuple(names),
        values={signal: v[n:] for signal, v in values.items()},
        inclusion=np.zeros((len(population.z_documents), len(names)), dtype=bool),
        tokenizers=tuple(tokenizers),
    )
    matrix.save(population.directory / SIGNALS_STEM)
    z_matrix.save(population.directory / Z_STEM)
    return matrix, z_matrix


@dataclass
class AttackResult:
    """One attack (or baseline) at one K: its evaluation, or why it has none."""

    attack: str
    k: int
    evaluation: Any = None  # llm_mia.stats.metrics.ScorerEvaluation
    n_null: int = 0
    reason: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {"attack": self.attack, "k": self.k, "n_null": self.n_null, "detail": self.detail}
        if self.evaluation is None:
            data["reason"] = self.reason
        else:
            data.update(self.evaluation.to_dict())
        return data


@dataclass
class ShadowEvaluation:
    """Every attack at every K on the target. ``fprs``: the false-positive rates of the TPR columns;
    ``summary_lines()``: the table and its notes; ``record``: every number; ``write(directory)``: attacks.json."""

    results: list[AttackResult] = field(default_factory=list)
    n_documents: int = 0
    n_z: int = 0
    timings: dict[str, Any] = field(default_factory=dict)
    fprs: tuple[float, ...] = (0.001, 0.01, 0.05)

    @property
    def record(self) -> dict[str, Any]:
        return self.to_dict()

    def summary_lines(self) -> list[str]:
        return attack_table_lines(self, self.fprs)

    def write(self, directory: str | Path) -> list[Path]:
        """Every number, as ``attacks.json`` in the population's directory."""
        import json

        path = Path(directory) / "attacks.json"
        path.write_text(json.dumps(self.to_dict(), indent=1, default=str), encoding="utf-8")
        return [path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_documents": self.n_documents,
            "n_z": self.n_z,
            "timings": self.timings,
            "results": [r.to_dict() for r in self.results],
        }

    def markdown(self, fprs: Sequence[float]) -> str:
        """The table: one row per (attack, K), AUROC [CI] and TPR at each FPR with the non-members it rests on."""
        from llm_mia.stats.metrics import format_fpr

        header = "| attack | K | AUROC [95% CI] | " + " | ".join(f"TPR@{format_fpr(f)} FPR" for f in fprs) + " |"
        lines = [header, "|" + "---|" * (3 + len(fprs))]
        for result in self.results:
            k = "-" if result.k == 0 else str(result.k)
            if result.evaluation is None:
                lines.append(f"| {result.attack} | {k} | {result.reason} |" + " |" * len(fprs))
                continue
            e = result.evaluation
            cells = []
            for fpr in fprs:
                t = e.tpr_at_fpr[fpr]
                flag = "" if t.resolvable else "*"
                cells.append(f"{t.tpr:.3f}{flag} [{t.tpr_ci[0]:.3f}, {t.tpr_ci[1]:.3f}] (n={t.n_nonmembers})")
            label = f"{result.attack} ({result.detail})" if result.detail else result.attack
            lines.append(
                f"| {label} | {k} | {e.auroc:.3f} [{e.auroc_ci[0]:.3f}, {e.auroc_ci[1]:.3f}] | "
                + " | ".join(cells)
                + " |"
            )
        return "\n".join(lines)


def _attack(name: str, options: dict[str, Any]) -> Any:
    from llm_mia.shadow.attacks import ATTACKS

    if name not in ATTACKS:
        from llm_mia.errors import unknown_name

        raise unknown_name("shadow attack", name, ATTACKS)
    return ATTACKS[name](**options.get(name, {}))


def evaluate_shadow_attacks(
    directory: str | Path,
    *,
    ks: Sequence[int] | None = None,
    attacks: Sequence[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    fprs: Sequence[float] = (0.001, 0.01, 0.05),
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> ShadowEvaluation:
    """Every attack at every K (default: 2, 4, 8, ... up to the models trained) on the target (module doc)."""
    from llm_mia.shadow.attacks import ATTACKS, NEEDS_POPULATION
    from llm_mia.stats.metrics import evaluate_scorer

    directory = Path(directory)
    population = load_population(directory)
    matrix, z_matrix = SignalMatrix.load(directory / SIGNALS_STEM), SignalMatrix.load(directory / Z_STEM)
    if list(matrix.ids) != [d.id for d in population.population] or matrix.models[-1] != TARGET:
        raise InputError(f"{directory}: the signals do not match the population; run `llm-mia shadow score` again")
    total = matrix.n_models - 1
    ks = sorted(set(ks or [k for k in (2, 4, 8, 16, 32, 64) if k <= total] or [total]))
    if ks[-1] > total:
        raise InputError(f"K = {ks[-1]} asked for, but {directory} holds {total} shadow models")
    names = list(attacks or ATTACKS)
    options = options or {}
    labels = population.target_members.astype(int)
    target, target_z = matrix.column(total), z_matrix.column(total)
    evaluate = partial(evaluate_scorer, fprs=fprs, n_bootstrap=n_bootstrap, seed=seed)
    result = ShadowEvaluation(n_documents=len(matrix.ids), n_z=len(z_matrix.ids), fprs=tuple(fprs))
    for baseline in BASELINES:
        result.results.append(AttackResult(baseline, 0, evaluate(target[baseline], labels, name=baseline)))
    for k in ks:
        shadows, z_shadows = matrix.select(range(k)), z_matrix.select(range(k))
        for name in names:
            attack = _attack(name, options)
            tracemalloc.start()
            mark = time.perf_counter()
            if name in NEEDS_POPULATION:
                scored = attack.fit(shadows, z_shadows).score(target, target_z)
            else:
                scored = attack.fit(shadows).score(target)
            seconds = time.perf_counter() - mark
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            result.timings[f"{name}@{k}"] = {"seconds": round(seconds, 4), "peak_mib": round(peak / 2**20, 2)}
            n_null = len(scored.scores) - scored.n_scored
            detail = ""
            if hasattr(attack, "variance_used_"):
                detail = f"variance {attack.variance_used_}"
            elif hasattr(attack, "a_used_"):
                detail = f"a = {attack.a_used_:g}, gamma = {attack.gamma:g}"
            finite = np.isfinite(scored.scores)
            if finite.sum() < 2 or len(set(labels[finite].tolist())) < 2:
                reasons = sorted({s for s in scored.status if s != "ok"})
                result.results.append(AttackResult(name, k, None, n_null, "; ".join(reasons[:2]) or "no scores"))
                continue
            evaluation = evaluate(scored.scores, labels, name=name)
            result.results.append(AttackResult(name, k, evaluation, n_null, detail=detail))
    return result


def attack_table_lines(evaluation: ShadowEvaluation, fprs: Sequence[float]) -> list[str]:
    """The markdown table and its notes (what * means, how many documents)."""
    return [
        evaluation.markdown(fprs),
        "",
        f"{evaluation.n_documents} target documents (its random half = members), {evaluation.n_z} z documents "
        "(RMIA's population, trained on by no model). * = fewer than 20 false positives allowed at that FPR: the "
        "threshold rests on the most extreme few non-members (see llm_mia.stats.metrics).",
    ]
