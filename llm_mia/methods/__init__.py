"""Generation-based methods, for any model including chat endpoints.

- :mod:`~llm_mia.methods.decop`: DE-COP, the verbatim passage among paraphrases;
  :mod:`~llm_mia.methods.paraphrase`: screening model-written paraphrases;
  :mod:`~llm_mia.methods.decop_remote`: the answer letters' log-probs from a model behind an API;
- :mod:`~llm_mia.methods.samia`: SaMIA, continuations of a text's first half and their ROUGE-1;
  :mod:`~llm_mia.methods.samia_remote`: continuations sampled from a model behind an API.
"""
