"""Evidence preparation: the pieces of a pre-registered plan, of the bundle that carries it out, and of the
report for non-statisticians. The commands that use them are workflows: ``llm-mia plan``
(:mod:`llm_mia.workflows.plan`), ``llm-mia evidence run`` (:mod:`llm_mia.workflows.evidence`, with
:mod:`llm_mia.workflows.canary_evidence` for a canary plan and :mod:`llm_mia.workflows.extraction_evidence` for
an extraction plan) and ``llm-mia verify`` (:mod:`llm_mia.workflows.verify`).

- :mod:`llm_mia.evidence.plan`: the plan's format (the analysis fixed before any score is seen), the inventories
  of models and inputs it holds, and reading it back with its hash checked;
- :mod:`llm_mia.evidence.bundle`: the bundle's files, manifest and evidence hash, and the checks of a run's
  models and inputs against the plan;
- :mod:`llm_mia.evidence.checks`: what ``llm-mia verify`` reports (a check that passed, failed or could not run),
  and the checks every kind of bundle shares;
- :mod:`llm_mia.evidence.query_log`: every model call, hash-chained;
- :mod:`llm_mia.evidence.report_html`, :mod:`llm_mia.evidence.report_canary`,
  :mod:`llm_mia.evidence.report_extraction` and :mod:`llm_mia.evidence.browser`: the self-contained reports,
  printed to PDF by headless Chromium; :mod:`llm_mia.evidence.report_page`: the Jinja2 environment (autoescaping
  on) and the page skeleton in ``templates/`` that the three reports extend.
"""
