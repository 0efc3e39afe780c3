"""Models, and what they return for a text.

- :mod:`~llm_mia.backends.local`: offline loading of a local model (packaged alias, directory, ``.gguf`` file,
  cached Hugging Face id), :mod:`~llm_mia.backends.big_models` (spread over devices) and
  :mod:`~llm_mia.backends.gguf_float` (a float32 copy of a quantized GGUF);
- :mod:`~llm_mia.backends.remote`: models behind an OpenAI-compatible API (client, response cache, capability
  probe, the stand-in for a loaded model, token log-probs);
- :mod:`~llm_mia.backends.loading`: which models a run uses (``ModelSettings``) and loading them all;
- :mod:`~llm_mia.backends.token_stats`: ``TokenStats``, what every backend returns for one text and every
  scorer reads.
"""
