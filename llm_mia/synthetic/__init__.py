"""Synthetic held-out sets for post-hoc dataset inference (Zhao et al. 2025): a generator fine-tuned on the
suspect work writes the controls (``generate``), and a calibration separates generation artefacts from
membership (``calibration``)."""
