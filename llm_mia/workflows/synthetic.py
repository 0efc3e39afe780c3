"""The dataset-level test with a synthetic control: was the suspect work trained on, when no text of its kind is
provably unseen? (Zhao et al. 2025; ``llm_mia.synthetic``.)

A generator fine-tuned on part of the work writes, after each prefix of the other part, a suffix the suspect
model cannot have seen (``llm_mia.synthetic.generate``). The suspect model scores the real and the synthetic
suffixes in one pass per view; the calibrated test (``llm_mia.synthetic.calibrated_test``) asks whether the model's
membership scores separate real from synthetic beyond what the text alone does.

Assumption stated with the verdict: the generator never saw the snippets it completed, it is at least as good a
model of the work's kind of text as the suspect model, and its completions differ from the real suffixes only
in ways that the text classifier sees or that make them look *more* like training data, never less. Guarantee
(``GUARANTEE``): per work, P(p <= alpha | the work was not trained on) <= alpha under that assumption, marginal
over the generator's sampling and the random splits: each split's score test is valid (asymptotically) and
Bonferroni's combination of the splits holds whatever their dependence; measured near alpha (module docstring
of ``llm_mia.synthetic.calibrated_test``).

Three safeguards, each able to withhold the verdict (``llm_mia.synthetic.safeguards``): a **negative control**
(the same test with a second synthetic suffix per prefix standing in for the real one: generated against
generated, nothing trained on; p <= alpha there withholds), **text separation** (the model-free classifier's
AUROC, real vs synthetic, at or above 0.95 withholds: the generator does not write the work's kind of text) and
**generator quality** (the suspect model finds the generated suffixes less probable than the generator finds
the real ones: withholds, the suspect being the better model of this text).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import LlmMiaError
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.synthetic.generate import (
    GENERATOR_LOSSES,
    SynthesisSettings,
    SyntheticSet,
    read_synthetic_set,
    synthesize,
)
from llm_mia.synthetic.safeguards import TEXT_SEPARATION_LIMIT, GeneratorQuality, decide, pooled, row_nats_per_byte

# length-invariant scores (pairs have equal lengths in the generator's tokens, not necessarily in the model's)
DEFAULT_SCORERS = ("loss", "min_k:k=0.2,0.3,0.4", "min_k_plus_plus", "lowercase")
ASSUMPTION = (
    "the generator never saw the snippets it completed, it is at least as good a model of the work's kind of text "
    "as the suspect model, and its completions differ from the real text only in ways the text classifier sees or "
    "that make them look more like training data, never less"
)
GUARANTEE = (
    "per work: P(p <= alpha | not trained on) <= alpha under the assumption, marginal over the generator's sampling "
    "and the splits (each split's score test valid asymptotically; Bonferroni over the splits, whatever their "
    "dependence); measured 0.033 at alpha 0.05 on 300 simulated null tests (benchmarks/synthetic_combination.py)"
)
OUTPUT_FILES = ("report.json", "summary.md", "scores.jsonl", "scores.jsonl.run.json", "synthetic.json")


@dataclass(frozen=True)
class SyntheticTestSettings:
    """The suspect model and its scorers, how the synthetic set is made, alpha, the calibration runs, the seed."""

    scoring: ScoringSettings = field(default_factory=lambda: ScoringSettings(scorers=DEFAULT_SCORERS))
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)
    alpha: float = 0.05
    runs: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or self.runs < 1:
            raise LlmMiaError("need 0 < alpha < 1 and at least one calibration run")
        columns = [c.column for c in self.scoring.calls]
        if "loss" not in columns:
            raise LlmMiaError(
                f"scorers {', '.join(columns)}: keep `loss` among them; the generator-quality check compares the "
                "suspect model's loss on the generated suffixes with the generator's on the real ones"
            )
        sensitive = [c.column for c in self.scoring.calls if not c.scorer.length_invariant]
        if sensitive:
            raise LlmMiaError(
                f"scorer(s) {', '.join(sensitive)} change with length alone; real and synthetic suffixes are equally "
                "long only in the generator's tokens, so leave them out"
            )


@dataclass
class SyntheticTestReport:
    """The verdict, the calibrated test, its safeguards, the synthetic set and the score rows."""

    report: dict[str, Any]
    rows: list[dict[str, Any]]
    record: dict[str, Any]
    synthetic: SyntheticSet

    @property
    def verdict(self) -> str:
        return self.report["verdict"]

    def summary_lines(self) -> list[str]:
        r = self.report
        control, blind, quality = r["negative_control"], r["text_separation"], r["generator_quality"]
        return [
            f"design: synthetic control (Zhao et al. 2025): {r['pairs']} real/synthetic suffix pairs of the suspect "
            f"work, generator {r['synthetic_set']['generator']['base']} fine-tuned on "
            f"{r['synthetic_set']['generator']['trained_on_snippets']} other snippets",
            f"calibrated test: p = {r['p_value']:.2g} over {len(r['calibration']['runs'])} random splits "
            f"(scores: {', '.join(r['calibration']['features'])})",
            f"safeguard negative control (generated vs generated): p = {control['p_value']:.2g}"
            + (" FIRED" if control["fired"] else ""),
            f"safeguard text separation (text alone, real vs synthetic): AUROC {blind['auroc']:.3f}, withholds at "
            f">= {blind['limit']:g}" + (" FIRED" if blind["fired"] else ""),
            f"safeguard generator quality: suspect on generated {quality['suspect_on_generated']:.3f} - generator on "
            f"real {quality['generator_on_real']:.3f} = {quality['margin']:+.3f} nats/byte, withholds above 0"
            + (" FIRED" if quality["fired"] else ""),
            f"assumption: {r['assumption']}",
            f"verdict: {r['verdict_sentence']}",
        ]

    def write(self, directory: str | Path) -> list[Path]:
        from llm_mia.io.outputs import write_json, write_text
        from llm_mia.io.records import write_run_record
        from llm_mia.io.score_files import write_rows

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = [write_json(directory / "report.json", self.report)]
        written.append(write_text(directory / "summary.md", "\n\n".join(self.summary_lines()) + "\n"))
        written.append(write_rows(self.rows, directory / "scores.jsonl"))
        written.append(write_run_record(directory / "scores.jsonl", self.record))
        written.append(self.synthetic.write(directory / "synthetic.json"))
        return written


def verdict_sentence(verdict: str, p: float, alpha: float, reasons: Sequence[str] = ()) -> str:
    """The verdict in fixed words, p to two significant figures; a withheld verdict gives every check that fired,
    what it saw and what to do (``llm_mia.synthetic.safeguards.decide``).

    >>> verdict_sentence("consistent", 0.0031, 0.05)[:60]
    'consistent with training on this work: calibrated p = 0.0031'
    >>> verdict_sentence("withheld", 0.01, 0.05, ["text separation: ..."])
    'verdict withheld (calibrated p = 0.01 not used): text separation: ...'
    """
    if verdict == "withheld":
        return f"verdict withheld (calibrated p = {p:.2g} not used): " + "; ".join(reasons)
    if verdict == "consistent":
        return (
            f"consistent with training on this work: calibrated p = {p:.2g} <= alpha {alpha:g} against a synthetic "
            "control"
        )
    return f"not distinguishable from the synthetic control: calibrated p = {p:.2g} > alpha {alpha:g}"


def run_synthetic_test(
    suspect: str | Path,
    settings: SyntheticTestSettings | None = None,
    *,
    synthetic: str | Path | None = None,
    progress: bool = True,
) -> SyntheticTestReport:
    """Make (or read, checked against the work) the synthetic set, score it with the suspect model, run the
    calibrated test, its negative control and the other safeguards, and assemble the report (module docstring).
    Pairs with a score or a generator loss missing are left out (counted in the report)."""
    from llm_mia.io.documents import Document
    from llm_mia.synthetic.calibrated_test import calibrated_test
    from llm_mia.workflows.score import score_documents

    settings = settings or SyntheticTestSettings()
    made = (
        read_synthetic_set(synthetic, work=suspect)
        if synthetic
        else synthesize(suspect, settings.synthesis, progress=progress)
    )
    pairs = made.pairs
    sides = ("real", "synthetic", "synthetic_control")
    documents = [
        Document(id=f"{side}:{p['id']}", text=p[side], label=int(side == "real")) for side in sides for p in pairs
    ]
    run = score_documents(
        documents, settings.scoring, source=f"{suspect} (synthetic control)", tool="llm-mia dataset-test"
    )
    columns = [call.column for call in settings.scoring.calls]
    values = np.array([[np.nan if row.get(c) is None else row[c] for c in columns] for row in run.rows], dtype=float)
    n = len(pairs)
    real, syn, control = values[:n], values[n : 2 * n], values[2 * n :]
    kept = np.isfinite(real).all(axis=1) & np.isfinite(syn).all(axis=1) & np.isfinite(control).all(axis=1)
    kept &= np.array([None not in (p[GENERATOR_LOSSES]["real"], p[GENERATOR_LOSSES]["synthetic"]) for p in pairs])
    texts = {side: [p[side] for p, keep in zip(pairs, kept, strict=True) if keep] for side in sides}
    main = calibrated_test(
        texts["real"],
        texts["synthetic"],
        real[kept],
        syn[kept],
        features=columns,
        runs=settings.runs,
        seed=settings.seed,
    )
    negative = calibrated_test(
        texts["synthetic_control"],
        texts["synthetic"],
        control[kept],
        syn[kept],
        features=columns,
        runs=settings.runs,
        seed=settings.seed + 10_000,
    )
    quality = generator_quality(
        [row for row, keep in zip(run.rows[:n], kept, strict=True) if keep],
        [row for row, keep in zip(run.rows[n : 2 * n], kept, strict=True) if keep],
        [p for p, keep in zip(pairs, kept, strict=True) if keep],
    )
    verdict, reasons = decide(
        main.p_value,
        settings.alpha,
        negative_control_p=negative.p_value,
        text_auroc=main.text_auroc,
        quality=quality,
    )
    report = {
        "design": "synthetic control (Zhao et al. 2025): calibrated real-vs-synthetic test",
        "verdict": verdict,
        "verdict_sentence": verdict_sentence(verdict, main.p_value, settings.alpha, reasons),
        "withheld_by": reasons,
        "p_value": main.p_value,
        "alpha": settings.alpha,
        "pairs": int(kept.sum()),
        "pairs_left_out": int((~kept).sum()),
        "assumption": ASSUMPTION,
        "guarantee": GUARANTEE,
        "calibration": main.to_dict(),
        "negative_control": {
            "name": "negative control",
            "what": "the same test with a second generated suffix per prefix in place of the real one",
            "p_value": negative.p_value,
            "fired": negative.p_value <= settings.alpha,
        },
        "text_separation": {
            "name": "text separation (blind baseline)",
            "what": "a model-free text classifier, real vs synthetic suffixes (mean AUROC over the test halves)",
            "auroc": main.text_auroc,
            "limit": TEXT_SEPARATION_LIMIT,
            "fired": main.text_auroc >= TEXT_SEPARATION_LIMIT,
        },
        "generator_quality": quality.to_dict(),
        "synthetic_set": made.record,
    }
    return SyntheticTestReport(report, run.rows, run.record, made)


def generator_quality(
    real_rows: Sequence[dict[str, Any]], synthetic_rows: Sequence[dict[str, Any]], pairs: Sequence[dict[str, Any]]
) -> GeneratorQuality:
    """The generator-quality check (``llm_mia.synthetic.safeguards``) from the suspect's score rows of the real
    and synthetic suffixes and the generator's losses stored with the pairs, pooled over the pairs' bytes."""
    real_bytes = [len(p["real"].encode("utf-8")) for p in pairs]
    synthetic_bytes = [len(p["synthetic"].encode("utf-8")) for p in pairs]
    return GeneratorQuality(
        suspect_on_generated=pooled([row_nats_per_byte(r) for r in synthetic_rows], synthetic_bytes),
        generator_on_real=pooled([p[GENERATOR_LOSSES]["real"] for p in pairs], real_bytes),
        suspect_on_real=pooled([row_nats_per_byte(r) for r in real_rows], real_bytes),
        generator_on_generated=pooled([p[GENERATOR_LOSSES]["synthetic"] for p in pairs], synthetic_bytes),
    )


def make_synthetic_set(suspect: str | Path, settings: SynthesisSettings, *, progress: bool = True) -> SyntheticSet:
    """``llm-mia synthesize``: cut the work, fine-tune the generator on half its snippets and complete the others
    (``llm_mia.synthetic.generate.synthesize``); the set, refused when the generator copies the work, not yet
    written (``SyntheticSet.write``)."""
    return synthesize(suspect, settings, progress=progress)
