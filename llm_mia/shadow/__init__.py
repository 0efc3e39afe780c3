"""Shadow and reference models: a population of models trained on random halves of a population of documents,
their signals as a documents x models matrix, and the attacks that calibrate each document against them (Shokri
et al. 2017; LiRA, Carlini et al. 2022; RMIA, Zarifzadeh et al. 2024).

- :mod:`llm_mia.shadow.inclusion`: which model trains on which document (the inclusion matrix).
- :mod:`llm_mia.shadow.signals`: the documents x models signal matrix and its file format.
- :mod:`llm_mia.shadow.attacks`: the attacks, each with ``fit`` (on the shadow models) and ``score`` (a target).
- :mod:`llm_mia.shadow.train`: training the population on a known-split recipe, cached and resumable per model.
- :mod:`llm_mia.workflows.shadow`: the workflows (train, score, evaluate) the ``llm-mia shadow`` commands call.
"""
