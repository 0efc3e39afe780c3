"""Statistics over scores and texts: numpy, scipy and scikit-learn only, never torch or transformers
(import-linter checks it).

- :mod:`~llm_mia.stats.metrics`: AUROC with intervals, TPR at low FPR, selection-corrected comparisons;
- :mod:`~llm_mia.stats.verdicts`: p-values, thresholds and verdicts calibrated on known non-members;
- :mod:`~llm_mia.stats.blind_baseline`: a bag-of-words classifier that never sees the model;
- :mod:`~llm_mia.stats.passage_test`: the passage-level test (random half-splits);
  :mod:`~llm_mia.stats.work_test`: the work-level permutation test;
  :mod:`~llm_mia.stats.work_difference`: the check that the suspect work does not differ from the controls as
  text; :mod:`~llm_mia.stats.work_test_power`: measured power of the work-level test;
- :mod:`~llm_mia.stats.dataset_inference`: the dataset-level design, its safeguards and the verdict;
- :mod:`~llm_mia.stats.overlap`: verbatim text shared across the sides.
"""
