"""Generation-based methods: what a model *writes* or *picks*, rather than the log-probs it gives a text; for any
model, chat endpoints included. The model calls themselves go through the model's interface
(``llm_mia.backends.protocol.Model``: ``sample`` and ``next_token_logprobs``, served by the engine for a white-box
model and by ``llm_mia.backends.remote`` for an endpoint) or the engine's greedy decoding (``llm_mia.engine.greedy``).

- :mod:`~llm_mia.methods.extraction`: verbatim extraction (Carlini et al. 2023): the match statistics between a
  greedy continuation of a passage's prefix and its true continuation, and the chance check's rule;
  :mod:`~llm_mia.methods.continuation_api`: the same probes sent to a model behind an OpenAI-compatible API
  (completions, or chat with a stated instruction), with the rule used where temperature 0 is not honoured;
- :mod:`~llm_mia.methods.decop`: DE-COP, the verbatim passage among paraphrases;
  :mod:`~llm_mia.methods.paraphrase`: screening model-written paraphrases;
- :mod:`~llm_mia.methods.samia`: SaMIA, continuations of a text's first half and their ROUGE-1.
"""
