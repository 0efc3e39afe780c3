"""The checks that withhold a synthetic-control verdict, and the verdict (``llm_mia.workflows.synthetic``).

The calibrated test (``llm_mia.synthetic.calibration``) reads only what the suspect model's scores add to what
a model-free text classifier sees. It is sound when every difference between real and generated suffixes that
moves the scores towards "member" is one the classifier sees. Three checks look for the ways that fails; any
one that fires withholds the verdict, and the report says which, what it saw and what to do.

* **Negative control**: the same test with a second generated suffix per prefix in place of the real one
  (generated against generated text: nothing to find). p <= alpha there says the test finds differences where
  there are none on this work.
* **Text separation**: the text classifier's mean AUROC on the test halves, real vs generated, at or above
  ``TEXT_SEPARATION_LIMIT`` (0.95: a bag of words ranks a random real suffix above a random generated one 19
  times in 20). Such a
  generator does not write the work's kind of text, and a suspect model sees that difference through channels
  a bag of words does not (fluency, coherence), which the calibration cannot remove. The test itself has
  nothing to read there either: pairs the text separates carry no weight in its score statistic. 0.95 is a
  judgement, not a derived constant (the calibration has no sharp failure point): it lies between the two
  generators measured in ``benchmarks/RESULTS.md`` (a small GPT-2 trained from scratch, AUROC 0.997-1.00;
  SmolLM2-135M fine-tuned, 0.83-0.93), and the other two checks stay in force below it.
* **Generator quality**: a suspect model that is a better model of the work's kind of text than the generator
  finds the generated suffixes less probable than the real ones, with no training at all; its membership
  scores then say "real text is more member-like", and a classifier that sees words only does not remove it.
  What can be measured without circularity decides the check:

  - the suspect's loss on the *real* suffixes cannot enter: training on the work lowers exactly it, so any
    check on it (the suspect against the generator on real text, or the suspect's own real-vs-generated gap)
    fires on true membership by construction;
  - the suspect's loss on the generated suffixes against the second generated set measures nothing (two
    samples of one distribution: equal in expectation whatever either model's quality);
  - used here: the suspect's loss on the **generated** suffixes (text it cannot have seen: it did not exist)
    against the generator's loss on the **real** suffixes (text the generator never saw: it was fine-tuned on
    the work's other snippets), both in nats per UTF-8 byte so different tokenizers compare:
    margin = L_suspect(generated) - L_generator(real); the check fires when margin > 0.

  Why this quantity: the artefact to fear is A = L_suspect(generated) - L_suspect(real, untrained), the
  suspect's preference for real text without training; L_suspect(real, untrained) is not observable (training
  lowers it), and the generator, a model of the work's kind that never saw these snippets, stands in for it.
  When the untrained suspect models the real text no better than the generator does, A <= margin, so margin
  <= 0 rules the artefact out; margin > 0 means the suspect finds the generator's text less probable than real
  unseen text is to a model of its kind: withheld. The margin holds no text the suspect can have trained on,
  so membership enters it only through the generated text: learning the work's style makes text written in
  it more probable (margin down); a model that memorised the work may find generated text that leaves a
  memorised continuation less probable (margin up). ``benchmarks/synthetic_control.py`` reports the margin on
  trained and untrained works. What no measurement on the work can show: a suspect better than the generator
  on real text by d nats per byte can carry an artefact up to margin + d while the check stays quiet (a suspect
  better at this text and a suspect trained on it look the same on the work's own text). That is the assumption
  stated with every verdict: the generator is at least as good a model of the work's kind as the suspect; use
  the strongest generator available (Zhao et al. 2025 fine-tune Llama-3-8B).

The verdict: "withheld" when any check fires; otherwise "consistent" when p <= alpha, else "not
distinguishable".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm_mia.errors import InputError

TEXT_SEPARATION_LIMIT = 0.95
NEGATIVE_CONTROL = "negative control"
TEXT_SEPARATION = "text separation"
GENERATOR_QUALITY = "generator quality"


def row_nats_per_byte(row: Mapping[str, Any]) -> float:
    """A score row's loss per UTF-8 byte: -loss * n_tokens / n_bytes, the mean scored-token NLL spread over the
    text's tokens (a first token left unscored, as without BOS, counts at the mean), in nats per byte.

    >>> row_nats_per_byte({"loss": -2.0, "n_tokens": 10, "n_bytes": 40})
    0.5
    """
    if row.get("loss") is None or not row.get("n_bytes"):
        raise InputError(f"row {row.get('id', '?')}: no loss or no bytes; the generator-quality check needs both")
    return -float(row["loss"]) * int(row["n_tokens"]) / int(row["n_bytes"])


def pooled(nats_per_byte: Sequence[float], n_bytes: Sequence[int]) -> float:
    """Byte-weighted mean: sum_i l_i * b_i / sum_i b_i (total nats over total bytes).

    >>> pooled([1.0, 2.0], [100, 300])
    1.75
    """
    weights = np.asarray(n_bytes, dtype=float)
    return float(np.sum(np.asarray(nats_per_byte, dtype=float) * weights) / np.sum(weights))


@dataclass(frozen=True)
class GeneratorQuality:
    """The generator-quality check (module docstring), in nats per UTF-8 byte pooled over the pairs tested.

    ``suspect_on_real`` and ``generator_on_generated`` are reported, not used: the first is what training lowers,
    the second shows how much the generator prefers its own (tempered) samples to real text.

    >>> GeneratorQuality(suspect_on_generated=1.1, generator_on_real=0.9).fired
    True
    >>> GeneratorQuality(suspect_on_generated=0.8, generator_on_real=0.9).fired
    False
    """

    suspect_on_generated: float
    generator_on_real: float
    suspect_on_real: float | None = None
    generator_on_generated: float | None = None

    @property
    def margin(self) -> float:
        """L_suspect(generated) - L_generator(real); > 0 fires."""
        return self.suspect_on_generated - self.generator_on_real

    @property
    def fired(self) -> bool:
        return self.margin > 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": GENERATOR_QUALITY,
            "what": "the suspect model's loss on the generated suffixes minus the generator's loss on the real "
            "suffixes (nats per UTF-8 byte); > 0: the suspect finds the generated text less probable than real "
            "unseen text is to the generator, so its preference for real text need not be training",
            "margin": self.margin,
            "suspect_on_generated": self.suspect_on_generated,
            "generator_on_real": self.generator_on_real,
            "suspect_on_real_not_used": self.suspect_on_real,
            "generator_on_generated": self.generator_on_generated,
            "fired": self.fired,
        }


def decide(
    p_value: float,
    alpha: float,
    *,
    negative_control_p: float,
    text_auroc: float,
    quality: GeneratorQuality | None,
) -> tuple[str, list[str]]:
    """(verdict, reasons): "withheld" with one sentence per check that fired, "<check>: what it saw; what to do",
    else "consistent" (p <= alpha) or "not distinguishable" with no reasons. ``quality`` None: not measured (then
    it cannot clear the verdict: withheld).

    >>> decide(0.01, 0.05, negative_control_p=0.4, text_auroc=0.8, quality=GeneratorQuality(0.8, 0.9))
    ('consistent', [])
    >>> verdict, reasons = decide(0.01, 0.05, negative_control_p=0.4, text_auroc=0.99, quality=None)
    >>> verdict, len(reasons)
    ('withheld', 2)
    """
    reasons = []
    if negative_control_p <= alpha:
        reasons.append(
            f"{NEGATIVE_CONTROL}: a second generated suffix in place of the real one gave p = "
            f"{negative_control_p:.2g} <= alpha {alpha:g}, so the test finds differences where there are none on "
            "this work; make a new synthetic set (another --synthesis-seed, more pairs) and do not rely on the "
            "test if it fires again"
        )
    if text_auroc >= TEXT_SEPARATION_LIMIT:
        reasons.append(
            f"{TEXT_SEPARATION}: text alone tells the real suffixes from the generated ones (AUROC "
            f"{text_auroc:.3f} >= {TEXT_SEPARATION_LIMIT:g}), so the generator does not write the work's kind of "
            "text and the suspect model will see the difference too; use a stronger generator (--generator) or "
            "more fine-tuning (--generator-epochs)"
        )
    if quality is None:
        reasons.append(
            f"{GENERATOR_QUALITY}: not measured (the synthetic set has no generator losses, or the suspect's loss "
            "was not scored); make the set again with `llm-mia synthesize` and keep `loss` among the scorers"
        )
    elif quality.fired:
        reasons.append(
            f"{GENERATOR_QUALITY}: the suspect model finds the generated suffixes less probable "
            f"({quality.suspect_on_generated:.3f} nats per byte) than the generator finds the real ones "
            f"({quality.generator_on_real:.3f}), so the generator is a weaker model of this text than the "
            "suspect and the suspect's preference for real text need not be training; use a stronger generator "
            "(--generator), at least as strong as the suspect model"
        )
    if reasons:
        return "withheld", reasons
    return ("consistent" if p_value <= alpha else "not distinguishable"), []
