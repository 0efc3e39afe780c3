"""Direction checks end to end on a real model (the packaged SmolLM2-135M)."""

from __future__ import annotations

import random

import numpy as np
import pytest

import llm_mia
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings

pytestmark = pytest.mark.slow

SENTENCES = [
    "The library opens at nine in the morning and closes at six in the evening.",
    "She poured the tea, sat down by the window, and watched the rain fall on the garden.",
    "Most birds build their nests in spring, when food is easy to find for their young.",
    "The train was late again, so he bought a coffee and read the newspaper on the platform.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "After dinner the children played cards while their parents washed the dishes.",
]


def test_natural_sentences_score_higher_than_the_same_words_shuffled(smollm2):
    rng = random.Random(0)
    shuffled = []
    for sentence in SENTENCES:
        words = sentence.split()
        rng.shuffle(words)
        shuffled.append(" ".join(words))
    frame = llm_mia.score(SENTENCES + shuffled, model=smollm2, scorers=["loss"], progress=False)
    natural, scrambled = frame["loss"][: len(SENTENCES)].to_numpy(), frame["loss"][len(SENTENCES) :].to_numpy()
    assert (natural > scrambled).all()
    assert natural.mean() - scrambled.mean() > 1.0  # nats per token: a large, not a marginal, gap


def test_a_passage_repeated_in_one_document_is_much_more_likely_the_second_time(smollm2):
    passage = (
        "Our bakery tested three sourdough starters over the winter; the one fed with rye flour rose most "
        "reliably in the cold back room, so the Saturday loaves will be a little darker from now on."
    )
    (stats,) = extract([passage + "\n" + passage], smollm2, ExtractionSettings(progress=False))
    tokens = len(smollm2.tokenizer(passage, add_special_tokens=False)["input_ids"])
    first, second = stats.logprob[: tokens - 1], stats.logprob[-(tokens - 5) :]
    assert np.mean(second) > np.mean(first) + 2.0
    assert np.mean(second) > -0.5  # the copy is close to certain once the model has seen it in context


def test_scores_do_not_depend_on_batch_size_on_the_real_model(smollm2):
    texts = [*SENTENCES, "A short one.", SENTENCES[0] * 3]
    one = extract(texts, smollm2, ExtractionSettings(batch_size=1, progress=False))
    many = extract(texts, smollm2, ExtractionSettings(batch_size=8, progress=False))
    for a, b in zip(one, many, strict=True):
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-4)
        np.testing.assert_allclose(a.sigma, b.sigma, atol=1e-4)
