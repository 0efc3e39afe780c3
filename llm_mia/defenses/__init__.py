"""Defenses against membership inference, measured with the same tools as the attacks.

- :mod:`llm_mia.defenses.output`: inference-time defenses applied to a loaded model's logits inside the
  extraction engine (temperature, noise, rounding, top-k-only output).
"""
