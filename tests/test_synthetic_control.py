"""Synthetic controls (Zhao et al. 2025): the calibration's null distribution (uniform p-values when the scores
carry no membership signal, no false positives when generated text merely looks more like training data), its
power, generation reproducible from its seed, and the refusals (a generator trained on the snippets it
completes, copying, a work too short, a model that cannot generate); the CLI end to end."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from scipy.stats import binomtest, kstest

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.synthetic.calibrated_test import calibrated_test
from llm_mia.synthetic.generate import (
    MIN_SNIPPETS,
    SynthesisSettings,
    check_generator_unseen,
    copied,
    cut_snippets,
    split_snippets,
    synthesize,
)

A_WORDS = [f"alpha{i}" for i in range(50)]
B_WORDS = [f"beta{i}" for i in range(50)]


def _pairs(rng: np.random.Generator, n: int, shift: float) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """n pairs: real texts mostly from one vocabulary, synthetic ones from a mix (text alone tells them apart),
    three membership scores per text, the synthetic side shifted by ``shift`` (> 0: generated text looks more
    like training data, as lower-perplexity text does; < 0: the real text does, as training would make it)."""

    def text(share_b: float) -> str:
        return " ".join((B_WORDS if rng.random() < share_b else A_WORDS)[rng.integers(50)] for _ in range(16))

    real = [text(0.3) for _ in range(n)]
    synthetic = [text(0.5) for _ in range(n)]
    return real, synthetic, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + shift


def test_scores_without_membership_signal_give_uniform_p_values() -> None:
    rng = np.random.default_rng(0)
    p_values = []
    for rep in range(120):
        real, synthetic, real_scores, synthetic_scores = _pairs(rng, 60, 0.0)
        p_values.append(calibrated_test(real, synthetic, real_scores, synthetic_scores, runs=1, seed=rep).p_value)
    p_values = np.array(p_values)
    assert kstest(p_values, "uniform").pvalue > 0.01
    hits = int((p_values <= 0.05).sum())
    assert binomtest(hits, len(p_values), 0.05).pvalue > 0.01, hits


def test_generated_text_that_looks_more_like_training_data_is_not_membership() -> None:
    """The case the weight constraint exists for: synthetic suffixes score higher (lower perplexity) with no
    membership anywhere; the uncalibrated comparison would call that training, the calibrated test does not."""
    rng = np.random.default_rng(1)
    p_values = []
    for rep in range(30):
        real, synthetic, real_scores, synthetic_scores = _pairs(rng, 60, 0.8)
        p_values.append(calibrated_test(real, synthetic, real_scores, synthetic_scores, runs=3, seed=rep).p_value)
        assert synthetic_scores.mean() > real_scores.mean()  # a naive test would see "more member-like" text
    assert sum(p <= 0.05 for p in p_values) == 0


def test_membership_signal_is_detected() -> None:
    rng = np.random.default_rng(2)
    detected = 0
    for rep in range(10):
        real, synthetic, real_scores, synthetic_scores = _pairs(rng, 80, -0.6)
        detected += calibrated_test(real, synthetic, real_scores, synthetic_scores, runs=3, seed=rep).p_value <= 0.05
    assert detected >= 9


def test_too_few_pairs_are_refused() -> None:
    with pytest.raises(InputError, match="needs at least 40"):
        calibrated_test(["a"] * 10, ["b"] * 10, np.zeros((10, 1)), np.zeros((10, 1)))


def _work(path, words: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocabulary = [
        "the",
        "cat",
        "sat",
        "on",
        "a",
        "mat",
        "and",
        "then",
        "ran",
        "far",
        "away",
        "into",
        "green",
        "fields",
        "of",
        "old",
        "england",
    ]
    path.write_text(" ".join(rng.choice(vocabulary) for _ in range(words)) + "\n")


@pytest.fixture
def tiny_settings(tiny_model_dirs):
    return lambda **given: SynthesisSettings(
        **{"generator": str(tiny_model_dirs["llama"]), "snippet_words": 12, "epochs": 1, "batch_size": 16, **given}
    )


def test_generation_reproduces_from_its_seed(tiny_settings, tmp_path) -> None:
    work = tmp_path / "work.txt"
    _work(work, 12 * 90)
    first = synthesize(work, tiny_settings(seed=3), progress=False)
    again = synthesize(work, tiny_settings(seed=3), progress=False)
    other = synthesize(work, tiny_settings(seed=4), progress=False)
    assert first.pairs == again.pairs and first.record["work"] == again.record["work"]
    assert [p["synthetic"] for p in first.pairs] != [p["synthetic"] for p in other.pairs]
    assert len(first.pairs) == 45 and first.record["generator"]["trained_on_snippets"] == 45
    assert all(p["synthetic"] != p["synthetic_control"] for p in first.pairs[:5])


def test_a_generator_trained_on_the_snippets_it_completes_is_refused(tiny_settings, tmp_path) -> None:
    """A work whose text repeats: the same snippet lands on both sides of the split, so the generator would have
    been trained on text it is to complete; the pipeline refuses before generating."""
    work = tmp_path / "repetitive.txt"
    rng = random.Random(0)
    block = " ".join(rng.choice(["one", "two", "three", "four", "five", "six"]) for _ in range(12 * 5))
    work.write_text(" ".join([block] * 18) + "\n")
    with pytest.raises(LlmMiaError, match="generator was trained on"):
        synthesize(work, tiny_settings(), progress=False)
    record = {"data": [{"id": "g0", "sha256": "0" * 64}]}
    check_generator_unseen(record, ["a snippet it never saw"])  # unseen: passes
    with pytest.raises(LlmMiaError, match="no training record"):
        check_generator_unseen({}, ["x"])


def test_copying_the_work_is_detected_and_predicting_the_next_word_is_not() -> None:
    work = ["w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16"]
    # after the prefix "w1 w2 w3 w4": the work's next six words (copied), the work's next word then new text
    # (a prediction, as a span starting in the prefix would wrongly count), and new text
    suffixes = ["w5 w6 w7 w8 w9 w10", "w5 y2 y3 y4 y5 y6", "z1 z2 z3"]
    found = copied(suffixes, work, 6)
    assert found == {0: "w5 w6 w7 w8 w9 w10"}


def test_a_work_too_short_and_a_model_that_cannot_generate_are_refused(tiny_settings, tmp_path) -> None:
    with pytest.raises(InputError, match=f"needs at least {MIN_SNIPPETS}"):
        split_snippets(cut_snippets(["word " * 300], 12), tiny_settings(), "short.txt")
    work = tmp_path / "work.txt"
    _work(work, 12 * 90)
    with pytest.raises(LlmMiaError, match="behind an API"):
        synthesize(work, tiny_settings(generator="api:some-model"), progress=False)


def test_the_cli_synthesizes_and_tests_against_the_synthetic_control(tiny_model_dirs, tmp_path, capsys) -> None:
    from llm_mia.cli import main

    work = tmp_path / "work.txt"
    _work(work, 12 * 90)
    synthetic = tmp_path / "synthetic.json"
    generator = ["--generator", str(tiny_model_dirs["llama"]), "--snippet-words", "12", "--generator-epochs", "1"]
    assert main(["synthesize", "--suspect", str(work), "--output", str(synthetic), "--no-progress", *generator]) == 0
    stored = json.loads(synthetic.read_text())
    assert stored["format"] == "llm-mia synthetic set" and len(stored["pairs"]) == 45
    test = ["dataset-test", "--model", str(tiny_model_dirs["gpt2"]), "--suspect", str(work), "--synthetic-control"]
    test += ["--synthetic", str(synthetic), "--no-cache", "--no-progress", "--calibration-runs", "3"]
    assert main([*test, "--output-dir", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "design: synthetic control" in printed and "safeguard negative control" in printed
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["verdict"] in ("consistent", "not distinguishable", "withheld")
    assert report["pairs"] == 45 and len(report["calibration"]["runs"]) == 3
    assert 0 <= report["blind_baseline"]["auroc"] <= 1 and "negative_control" in report
    other = tmp_path / "other.txt"
    _work(other, 12 * 90, seed=9)
    assert main([*test[:4], str(other), *test[5:], "--output-dir", str(tmp_path / "r2")]) != 0
    assert "made from another text" in capsys.readouterr().err
    assert main(["dataset-test", "--suspect", str(work), "--output-dir", str(tmp_path / "r3")]) != 0
    assert "--synthetic-control" in capsys.readouterr().err
