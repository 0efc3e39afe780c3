"""Files in and out, and what identifies them: no model code, no statistics.

- :mod:`~llm_mia.io.documents`: readers of every input format and the one label rule (``Document``);
- :mod:`~llm_mia.io.labelled_sets`: WikiMIA and MIMIR; :mod:`~llm_mia.io.corpora`: the packaged corpora;
  :mod:`~llm_mia.io.real_works`: works of real text for measuring the dataset-level test;
- :mod:`~llm_mia.io.passages`: works cut into passages of a fixed number of tokens;
- :mod:`~llm_mia.io.score_files`: score rows; :mod:`~llm_mia.io.records`: run records;
- :mod:`~llm_mia.io.outputs`: output-path checks and atomic writes; :mod:`~llm_mia.io.tables` and
  :mod:`~llm_mia.io.plots`: text tables and figures;
- :mod:`~llm_mia.io.identity`: hashes, package versions, the source commit and the cache root.
"""
