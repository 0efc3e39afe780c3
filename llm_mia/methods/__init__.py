"""Generation-based methods: what a model *writes* or *picks*, rather than the log-probs it gives a text; for any
model, chat endpoints included. The model calls themselves are the engine's (``llm_mia.engine.generation``:
sampling, ``llm_mia.engine.greedy``: greedy decoding) or an endpoint's (``llm_mia.backends.remote``).

- :mod:`~llm_mia.methods.extraction`: verbatim extraction (Carlini et al. 2023): the match statistics between a
  greedy continuation of a passage's prefix and its true continuation, and the chance check's rule;
  :mod:`~llm_mia.methods.continuation_api`: the same probes sent to a model behind an OpenAI-compatible API
  (completions, or chat with a stated instruction), with the rule used where temperature 0 is not honoured;
- :mod:`~llm_mia.methods.decop`: DE-COP, the verbatim passage among paraphrases;
  :mod:`~llm_mia.methods.paraphrase`: screening model-written paraphrases;
  :mod:`~llm_mia.methods.decop_remote`: the answer letters' log-probs from a model behind an API;
- :mod:`~llm_mia.methods.samia`: SaMIA, continuations of a text's first half and their ROUGE-1;
  :mod:`~llm_mia.methods.samia_remote`: continuations sampled from a model behind an API.
"""
