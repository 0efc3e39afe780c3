"""Evidence preparation: a pre-registered plan, a bundle that carries it out, a report for non-statisticians,
and an independent check of the bundle.

- :mod:`llm_mia.evidence.plan`: ``llm-mia plan`` (the analysis fixed before any score is seen);
- :mod:`llm_mia.evidence.bundle`: ``llm-mia evidence run`` (inputs checked against the plan, the test run as
  planned, every model call logged, the bundle written with a manifest);
- :mod:`llm_mia.evidence.report_html` and :mod:`llm_mia.evidence.browser`: the self-contained report, printed
  to PDF by headless Chromium;
- :mod:`llm_mia.workflows.verify`: ``llm-mia verify`` (hashes, the plan, the query log's chain, re-scoring).
"""
