"""From documents and models to score rows: which views, which passes, which scorers.

- :mod:`~llm_mia.scoring.pipeline`: views -> extractions -> rows (the one place that does it);
- :mod:`~llm_mia.scoring.settings`: ``ScoringSettings``, validated before any model loads;
- :mod:`~llm_mia.scoring.scorers`: the registry and the scorers (pure functions of ``TokenStats``);
- :mod:`~llm_mia.scoring.variants`, :mod:`~llm_mia.scoring.neighbours`,
  :mod:`~llm_mia.scoring.token_frequencies`: the text variants, neighbour texts and token frequencies some
  scorers read;
- :mod:`~llm_mia.scoring.ray_engine`: the same pipeline on Ray actors;
  :mod:`~llm_mia.scoring.request_estimate`: what scoring on an API would send (``--dry-run``).
"""
