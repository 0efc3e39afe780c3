"""Workflows: one library function per job, taking validated settings and returning a result object.

- :func:`llm_mia.workflows.score.score_documents`: score documents (``llm-mia score``);
- :func:`llm_mia.workflows.evaluate.evaluate_table`: a labelled score table evaluated, with the blind
  baseline beside it (``llm-mia evaluate``);
- :func:`llm_mia.workflows.calibrate.calibrate_score_file` and
  :func:`~llm_mia.workflows.calibrate.judge_score_file`: a calibration from known non-members, and
  per-document verdicts from it (``llm-mia calibrate``, ``llm-mia verdict``);
- :func:`llm_mia.workflows.dataset.run_dataset_test`: a work against control works (``llm-mia dataset-test``);
- :func:`llm_mia.workflows.benchmark.run_benchmark` (``llm-mia benchmark``, ``llm-mia demo``).

The CLI parses arguments, builds the settings (so bad input fails before any model loads), calls one of these
and writes what it returns. Nothing here imports the CLI.
"""
