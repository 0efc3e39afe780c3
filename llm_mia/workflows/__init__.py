"""Workflows: one library function per job, taking validated settings and returning a result object.

- :func:`llm_mia.workflows.score.score_documents`: score documents (``llm-mia score``);
- :func:`llm_mia.workflows.evaluate.evaluate_table`: a labelled score table evaluated, with the blind
  baseline beside it (``llm-mia evaluate``);
- :func:`llm_mia.workflows.calibrate.calibrate_score_file` and
  :func:`~llm_mia.workflows.calibrate.judge_score_file`: a calibration from known non-members, and
  per-document verdicts from it (``llm-mia calibrate``, ``llm-mia verdict``);
- :func:`llm_mia.workflows.dataset.run_dataset_test`: a work against control works (``llm-mia dataset-test``);
- :func:`llm_mia.workflows.benchmark.run_benchmark` (``llm-mia benchmark``, ``llm-mia demo``), with
  :mod:`~llm_mia.workflows.benchmark_defenses`, :mod:`~llm_mia.workflows.benchmark_canaries` and the report
  (:mod:`~llm_mia.workflows.benchmark_report`);
- :func:`llm_mia.workflows.extraction.run_extraction_test`: verbatim extraction (``llm-mia extract-test``);
  :func:`llm_mia.workflows.decop.run_decop` and :func:`llm_mia.workflows.samia.run_samia` (``llm-mia decop``,
  ``llm-mia samia``);
- :func:`llm_mia.workflows.synthetic.run_synthetic_test` (``llm-mia synthesize``),
  :func:`llm_mia.workflows.canary.run_canary_test` (``llm-mia canary``), :mod:`llm_mia.workflows.shadow`
  (``llm-mia shadow``), :func:`llm_mia.workflows.check_backend.check_backend` (``llm-mia check-backend``);
- :func:`llm_mia.workflows.precision.precision_check`: a requested dtype against float32 (``--precision-check``);
- evidence: :func:`llm_mia.workflows.plan.build_plan` (``llm-mia plan``),
  :func:`llm_mia.workflows.evidence.run_evidence` (``llm-mia evidence run``; canary and extraction plans in
  :mod:`~llm_mia.workflows.canary_evidence` and :mod:`~llm_mia.workflows.extraction_evidence`) and
  :func:`llm_mia.workflows.verify.verify_bundle` (``llm-mia verify``).

The CLI parses arguments, builds the settings (so bad input fails before any model loads), calls one of these
and writes what it returns. Nothing here imports the CLI.
"""
