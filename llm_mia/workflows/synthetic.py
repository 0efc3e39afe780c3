"""The dataset-level test with a synthetic control: was the suspect work trained on, when no text of its kind is
provably unseen? (Zhao et al. 2025; ``llm_mia.synthetic``.)

A generator fine-tuned on part of the work writes, after each prefix of the other part, a suffix the suspect
model cannot have seen (``llm_mia.synthetic.generate``). The suspect model scores the real and the synthetic
suffixes in one pass per view; the calibrated test (``llm_mia.synthetic.calibrated_test``) asks whether the model's
membership scores separate real from synthetic beyond what the text alone does.

Assumption stated with the verdict: the generator never saw the snippets it completed, and its completions
differ from the real suffixes only in ways that the text classifier can see or that make them look *more* like
training data, never less. Guarantee: per work, P(p <= alpha | the work was not trained on) <= alpha under that
assumption, marginal over the generator's sampling and the random splits.

Safeguards reported beside the verdict, in the form of ``llm-mia dataset-test``: a **negative control** (the
same test with a second synthetic suffix per prefix standing in for the real one: generated against generated,
nothing trained on; a p-value <= alpha there withholds the verdict) and a **blind baseline** (how well text
alone tells real from synthetic, the model-free classifier's AUROC: high values are what the calibration is
for, and are reported, not hidden).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import LlmMiaError
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.synthetic.generate import SynthesisSettings, SyntheticSet, read_synthetic_set, synthesize

# length-invariant scores (pairs have equal lengths in the generator's tokens, not necessarily in the model's)
DEFAULT_SCORERS = ("loss", "min_k:k=0.2,0.3,0.4", "min_k_plus_plus", "lowercase")
ASSUMPTION = (
    "the generator never saw the snippets it completed, and its completions differ from the real text only in "
    "ways the text classifier sees or that make them look more like training data, never less"
)
GUARANTEE = "per work: P(p <= alpha | not trained on) <= alpha, marginal over the generator's sampling and the splits"
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
        control, blind = r["negative_control"], r["blind_baseline"]
        return [
            f"design: synthetic control (Zhao et al. 2025): {r['pairs']} real/synthetic suffix pairs of the suspect "
            f"work, generator {r['synthetic_set']['generator']['base']} fine-tuned on "
            f"{r['synthetic_set']['generator']['trained_on_snippets']} other snippets",
            f"calibrated test: p = {r['p_value']:.2g} over {len(r['calibration']['runs'])} random splits "
            f"(scores: {', '.join(r['calibration']['features'])})",
            f"safeguard negative control (generated vs generated): p = {control['p_value']:.2g}"
            + (" FIRED" if control["fired"] else ""),
            f"safeguard blind baseline (text alone, real vs synthetic): AUROC {blind['auroc']:.2f}",
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


def verdict_sentence(verdict: str, p: float, alpha: float) -> str:
    """The verdict in fixed words, p to two significant figures.

    >>> verdict_sentence("consistent", 0.0031, 0.05)[:60]
    'consistent with training on this work: calibrated p = 0.0031'
    """
    if verdict == "withheld":
        return "verdict withheld: the negative control (generated against generated text) was significant"
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
    calibrated test and its negative control, and assemble the report (module docstring)."""
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
    fired = negative.p_value <= settings.alpha
    verdict = "withheld" if fired else "consistent" if main.p_value <= settings.alpha else "not distinguishable"
    report = {
        "design": "synthetic control (Zhao et al. 2025): calibrated real-vs-synthetic test",
        "verdict": verdict,
        "verdict_sentence": verdict_sentence(verdict, main.p_value, settings.alpha),
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
            "fired": fired,
        },
        "blind_baseline": {
            "name": "blind baseline",
            "what": "a model-free text classifier, real vs synthetic suffixes (mean AUROC over the test halves)",
            "auroc": main.text_auroc,
        },
        "synthetic_set": made.record,
    }
    return SyntheticTestReport(report, run.rows, run.record, made)
