"""Workflows: one library function per command, taking validated settings and returning a result object.

Every command of ``llm-mia`` and the function it calls:

- ``score``: :func:`llm_mia.workflows.score_job.run_score_job` (the rows alone:
  :func:`llm_mia.workflows.score.score_documents`; a dry run:
  :func:`~llm_mia.workflows.score_job.request_estimate_lines`);
- ``evaluate``: :func:`llm_mia.workflows.evaluate.run_evaluation` (a labelled table evaluated, with the blind
  baseline beside it; a frame in hand: :func:`~llm_mia.workflows.evaluate.evaluate_table`);
- ``calibrate`` and ``verdict``: :func:`llm_mia.workflows.calibrate.calibrate_score_file` and
  :func:`~llm_mia.workflows.calibrate.judge_score_file`;
- ``dataset-test``: :func:`llm_mia.workflows.dataset.run_dataset_test` (a work against control works), with
  ``--synthetic-control`` :func:`llm_mia.workflows.synthetic.run_synthetic_test`;
- ``synthesize``: :func:`llm_mia.workflows.synthetic.make_synthetic_set`;
- ``benchmark``: :func:`llm_mia.workflows.benchmark_report.benchmark_report` (the run itself:
  :func:`llm_mia.workflows.benchmark.run_benchmark`), with ``--defense``
  :func:`llm_mia.workflows.benchmark_defenses.run_defense_benchmark`; canaries planted in a known split:
  :mod:`~llm_mia.workflows.benchmark_canaries`;
- ``demo``: :func:`llm_mia.workflows.demo.run_demo`;
- ``shadow``: :func:`llm_mia.workflows.shadow.train_shadow_models`,
  :func:`~llm_mia.workflows.shadow.score_shadow_models`, :func:`~llm_mia.workflows.shadow.evaluate_shadow_attacks`;
- ``canary``: :func:`llm_mia.workflows.canary.make_canary_files`, :func:`~llm_mia.workflows.canary.plant_canary_files`,
  :func:`~llm_mia.workflows.canary.canary_test`, and ``canary plan``
  :func:`llm_mia.workflows.canary_evidence.build_canary_plan`;
- ``extract-test``: :func:`llm_mia.workflows.extraction.run_extraction_test` (with control works) or
  :func:`~llm_mia.workflows.extraction.run_extraction_probe` (probes alone); a dry run:
  :func:`~llm_mia.workflows.extraction.request_estimate_lines`;
- ``decop`` and ``samia``: :func:`llm_mia.workflows.decop.run_decop_quiz`, :func:`llm_mia.workflows.samia.run_samia`;
- ``check-backend``: :func:`llm_mia.workflows.check_backend.check_backend`;
- ``list``: :func:`llm_mia.workflows.scorer_list.list_scorers`; ``cache``: :func:`llm_mia.workflows.cache.cache_action`;
- evidence: ``plan``: :func:`llm_mia.workflows.plan.build_plan` (``--analysis extraction``:
  :func:`llm_mia.workflows.extraction_evidence.build_extraction_plan`; either as a
  :class:`~llm_mia.workflows.plan.PlannedAnalysis`); ``evidence run``: :func:`llm_mia.workflows.evidence.run_evidence`;
  ``verify``: :func:`llm_mia.workflows.verify.verify_bundle`;
- ``--precision-check`` (score, evaluate, plan): :func:`llm_mia.workflows.precision.precision_check`.

Every result has ``record`` and ``summary_lines()``, and a result with files ``write(destination)``
(:mod:`llm_mia.workflows.results`). The CLI parses arguments, builds the settings (so bad input fails before any
model loads), calls one of these and writes and prints what it returns. Nothing here imports the CLI or prints:
progress a command shows as it happens reaches it through an ``echo`` callable.
"""
