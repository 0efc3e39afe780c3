"""Defenses against membership inference, measured with the same tools as the attacks.

- :mod:`llm_mia.defenses.output`: inference-time defenses (temperature, noise, rounding, top-k-only output),
  applied to a loaded model's logits by the engine (:mod:`llm_mia.engine.output_defense`);
- :mod:`llm_mia.defenses.training`: training-time defenses for the known-split recipes (DP-SGD, weight decay,
  dropout, early stopping); :mod:`llm_mia.defenses.specs`: the spec grammar both share;
- :mod:`llm_mia.defenses.audit`: a lower bound on epsilon from an attack's measured error rates.
"""
