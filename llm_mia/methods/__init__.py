"""Generation-based methods: what a model *writes*, rather than the log-probs it gives a text.

- :mod:`llm_mia.methods.extraction`: verbatim extraction (Carlini et al. 2023): the match statistics between a
  greedy continuation of a passage's prefix and its true continuation, and the chance check's rule;
- :mod:`llm_mia.methods.greedy`: batched greedy decoding of many prefixes by a white-box model, through the
  stats cache (resume) with a progress bar;
- :mod:`llm_mia.methods.continuation_api`: the same probes sent to a model behind an OpenAI-compatible API
  (completions, or chat with a stated instruction), with the rule used where temperature 0 is not honoured.

DE-COP (``llm_mia.decop``), SaMIA (``llm_mia.samia``) and white-box sampling (``llm_mia.generation``) belong here
too and will move in later.
"""
