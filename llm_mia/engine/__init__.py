"""The white-box engine: the only code that runs a local model's forward pass, and what runs it.

- :mod:`~llm_mia.engine.extract`: texts -> ``TokenStats`` (windows, batches, reductions, the stats cache);
- :mod:`~llm_mia.engine.extraction_settings`: how texts are batched and windowed (``ExtractionSettings``);
- :mod:`~llm_mia.engine.reductions`: per-position reductions of the logits;
  :mod:`~llm_mia.engine.output_defense`: what a defended deployment returns instead;
- :mod:`~llm_mia.engine.batch_size`, :mod:`~llm_mia.engine.threads`, :mod:`~llm_mia.engine.throughput`:
  batches that fit, torch threads, remembered speed;
- :mod:`~llm_mia.engine.distributed`: several processes of one launch; :mod:`~llm_mia.engine.stats_cache`:
  finished batches kept, so a killed run resumes with identical bits;
- :mod:`~llm_mia.engine.gradients` (GradNorm), :mod:`~llm_mia.engine.generation` (sampling) and
  :mod:`~llm_mia.engine.greedy` (batched greedy decoding, through the stats cache).
"""
