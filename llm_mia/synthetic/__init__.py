"""Synthetic held-out sets for post-hoc dataset inference (Zhao et al. 2025): a generator fine-tuned on the
suspect work writes the controls (``generate``), a calibrated test separates generation artefacts from membership
(``calibrated_test``), and safeguards withhold the verdict where the design cannot hold (``safeguards``); the
command is :mod:`llm_mia.workflows.synthetic`."""
