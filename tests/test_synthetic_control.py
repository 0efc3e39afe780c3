"""Synthetic controls (Zhao et al. 2025): the calibration's null distribution (valid p-values when the scores
carry no membership signal, no false positives when generated text merely looks more like training data or
differs from the real text in ways the text shows), the combination's level and power, the safeguards that
withhold a verdict (text separation, generator quality), generation reproducible from its seed, and the refusals
(a generator trained on the snippets it completes, copying, a work too short, a model that cannot generate); the
CLI end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from rates import assert_at_most
from scipy.stats import kstest, norm, ttest_ind

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.labelled_sets import load_wikimia
from llm_mia.synthetic.calibrated_test import calibrated_test, minimum_p
from llm_mia.synthetic.generate import (
    GENERATOR_LOSSES,
    MIN_SNIPPETS,
    SynthesisSettings,
    check_generator_unseen,
    copied,
    cut_snippets,
    read_synthetic_set,
    split_snippets,
    synthesize,
)
from llm_mia.synthetic.safeguards import GENERATOR_QUALITY, TEXT_SEPARATION, GeneratorQuality, decide

A_WORDS = [f"alpha{i}" for i in range(50)]
B_WORDS = [f"beta{i}" for i in range(50)]
WIKIMIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia"
QUIET = GeneratorQuality(suspect_on_generated=0.8, generator_on_real=1.0)  # a generator-quality check that passed


def _text(rng: np.random.Generator, share_b: float) -> str:
    return " ".join((B_WORDS if rng.random() < share_b else A_WORDS)[rng.integers(50)] for _ in range(16))


def _pairs(rng: np.random.Generator, n: int, shift: float) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """n pairs: real texts mostly from one vocabulary, synthetic ones from a mix (text alone tells them apart),
    three membership scores per text, the synthetic side shifted by ``shift`` (> 0: generated text looks more
    like training data, as lower-perplexity text does; < 0: the real text does, as training would make it)."""
    real = [_text(rng, 0.3) for _ in range(n)]
    synthetic = [_text(rng, 0.5) for _ in range(n)]
    return real, synthetic, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + shift


def _visible_pairs(rng: np.random.Generator, n: int, share: float) -> tuple[list, list, np.ndarray, np.ndarray]:
    """n pairs of one text distribution, except that ``share`` of the synthetic texts carry a marker word the
    text classifier sees, and exactly those score 0.8 sd lower (less like training data): a difference the
    text shows, which also moves the scores, with no membership anywhere."""
    real = [_text(rng, 0.3) for _ in range(n)]
    marked = rng.random(n) < share
    synthetic = [_text(rng, 0.3) + (" zmarker zmarker" if m else "") for m in marked]
    synthetic_scores = rng.normal(size=(n, 3))
    synthetic_scores[marked] -= 0.8
    return real, synthetic, rng.normal(size=(n, 3)), synthetic_scores


@pytest.mark.slow
def test_scores_without_membership_signal_give_valid_p_values() -> None:
    """One split's p under the null: at most alpha at p <= 0.05, and the score test's z standard normal where the
    training half gave the scores a weight (elsewhere p = 1/2 exactly: nothing to test)."""
    rng = np.random.default_rng(0)
    runs = []
    for rep in range(120):
        real, synthetic, real_scores, synthetic_scores = _pairs(rng, 60, 0.0)
        runs.append(calibrated_test(real, synthetic, real_scores, synthetic_scores, runs=1, seed=rep).runs[0])
    p_values = np.array([run.p_value for run in runs])
    assert_at_most(int((p_values <= 0.05).sum()), len(p_values), 0.05, "one split under the null")
    z = np.array([run.z for run in runs if run.p_value != 0.5])
    assert len(z) > 60 and kstest(z, "norm").pvalue > 0.01
    assert all(run.p_value == 0.5 for run in runs if not any(run.weights))


@pytest.mark.slow
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


@pytest.mark.parametrize(("share", "reps"), [(0.5, 60), (1.0, 20)])
@pytest.mark.slow
def test_a_difference_the_text_shows_is_not_membership(share: float, reps: int) -> None:
    """The text part explains the whole of a difference the classifier sees (half the synthetic texts marked:
    AUROC about 0.75; all marked: 1.0), although the scores move with it; the uncalibrated comparison of the
    scores calls it membership every time."""
    rng = np.random.default_rng(5)
    hits = naive = 0
    for rep in range(reps):
        real, synthetic, real_scores, synthetic_scores = _visible_pairs(rng, 60, share)
        result = calibrated_test(real, synthetic, real_scores, synthetic_scores, runs=3, seed=rep)
        hits += result.p_value <= 0.05
        naive += ttest_ind(real_scores[:, 0], synthetic_scores[:, 0], alternative="greater").pvalue <= 0.05
    assert naive >= 0.5 * reps if share < 1 else naive == reps  # the construction has teeth
    assert_at_most(hits, reps, 0.05, f"text-visible difference, {share:.0%} of the synthetic texts marked")


@pytest.mark.slow
def test_the_audit_marker_construction_is_not_called_membership() -> None:
    """The audit's construction, no training anywhere: real side = WikiMIA non-members, synthetic side = the same
    texts with a marker word every 5 words (text alone separates them perfectly), membership scores = correlated
    noise shifted up 0.6 sd on the real side (a suspect model that finds the generator's text less fluent). The
    publication's calibration said "consistent" on 6 of 6 seeds; here neither the calibrated p nor the verdict
    does more often than alpha allows, and the text-separation safeguard names the problem on every seed."""
    texts = [d.text for d in load_wikimia(WIKIMIA / "64.jsonl") if d.label == 0][:100]
    marked = [" ".join(w + (" zmarker" if i % 5 == 4 else "") for i, w in enumerate(t.split())) for t in texts]
    significant = consistent = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        common = rng.normal(size=(2, 100, 1))
        real_scores = np.sqrt(0.8) * common[0] + np.sqrt(0.2) * rng.normal(size=(100, 4)) + 0.6
        synthetic_scores = np.sqrt(0.8) * common[1] + np.sqrt(0.2) * rng.normal(size=(100, 4))
        result = calibrated_test(texts, marked, real_scores, synthetic_scores, runs=3, seed=seed)
        # no second generated set and no language model here: only the calibration and text separation speak
        verdict, reasons = decide(
            result.p_value, 0.05, negative_control_p=1.0, text_auroc=result.text_auroc, quality=QUIET
        )
        significant += result.p_value <= 0.05
        consistent += verdict == "consistent"
        assert verdict == "withheld" and reasons[0].startswith(TEXT_SEPARATION), (result.text_auroc, reasons)
    assert_at_most(significant, 6, 0.05, "marker construction: calibrated p <= 0.05")
    assert_at_most(consistent, 6, 0.05, "marker construction: verdict 'consistent'")


@pytest.mark.slow
def test_the_combination_holds_its_level_on_correlated_splits() -> None:
    """Bonferroni over 10 equicorrelated Gaussian splits: at most alpha at every correlation, near it when the
    splits are weakly dependent (random half-splits of one set of pairs are), where the published 1 - prod(1 - p)
    is near 0."""
    rng = np.random.default_rng(0)
    reps = 4000
    for rho in (0.0, 0.3, 0.9):
        z = np.sqrt(rho) * rng.normal(size=(reps, 1)) + np.sqrt(1 - rho) * rng.normal(size=(reps, 10))
        p = norm.sf(z)
        hits = sum(minimum_p(row) <= 0.05 for row in p)
        assert_at_most(hits, reps, 0.05, f"Bonferroni, correlation {rho}")
        if rho <= 0.3:
            assert hits >= 0.035 * reps, hits  # near alpha
            assert np.sum(1 - np.prod(1 - p, axis=1) <= 0.05) <= 0.002 * reps  # the published one: far below


@pytest.mark.slow
def test_membership_signal_is_detected_more_often_than_by_the_published_combination() -> None:
    """A 0.6 sd membership shift the text does not show, 80 pairs: found in most runs, and more often than the
    published combination of the same splits finds it."""
    rng = np.random.default_rng(2)
    detected = published = 0
    for rep in range(10):
        real, synthetic, real_scores, synthetic_scores = _pairs(rng, 80, -0.6)
        result = calibrated_test(real, synthetic, real_scores, synthetic_scores, runs=5, seed=rep)
        detected += result.p_value <= 0.05
        published += 1 - np.prod([1 - run.p_value for run in result.runs]) <= 0.05
    assert detected >= 8 and detected > published, (detected, published)


def _fluency_case(seed: int, *, suspect_real: float, suspect_generated: float, generator_real: float) -> tuple:
    """Texts the classifier cannot tell apart (one vocabulary), per-text losses in nats per byte around the given
    means, the suspect's membership scores read from its losses (loss and two noisy copies): the calibrated
    result and the generator-quality check built from them."""
    rng = np.random.default_rng(seed)
    n = 80
    real = [_text(rng, 0.3) for _ in range(n)]
    synthetic = [_text(rng, 0.3) for _ in range(n)]
    on_real = suspect_real + 0.15 * rng.normal(size=n)
    on_generated = suspect_generated + 0.15 * rng.normal(size=n)
    scores = [
        np.column_stack([-x, -x + 0.1 * rng.normal(size=n), -x + 0.1 * rng.normal(size=n)])
        for x in (on_real, on_generated)
    ]
    result = calibrated_test(real, synthetic, scores[0], scores[1], runs=3, seed=seed)
    quality = GeneratorQuality(
        suspect_on_generated=float(on_generated.mean()),
        generator_on_real=float(generator_real + 0.15 * rng.normal(size=n).mean()),
        suspect_on_real=float(on_real.mean()),
    )
    return result, quality


@pytest.mark.slow
def test_the_generator_quality_check_fires_on_a_stronger_suspect_and_not_on_a_comparable_one() -> None:
    """The case it exists for: a suspect model that finds the generated suffixes much less fluent than the real
    ones, with no membership, and a text classifier that cannot see why; the calibrated test alone says p <=
    alpha, the check withholds. A comparable generator is left alone, with or without membership (training
    lowers the suspect's loss on the real suffixes, which the check does not read)."""
    stronger, quality = _fluency_case(0, suspect_real=0.8, suspect_generated=1.3, generator_real=1.0)
    assert stronger.p_value <= 0.05 and stronger.text_auroc < 0.7  # what the check is for
    verdict, reasons = decide(
        stronger.p_value, 0.05, negative_control_p=0.5, text_auroc=stronger.text_auroc, quality=quality
    )
    assert quality.fired and verdict == "withheld" and reasons[0].startswith(GENERATOR_QUALITY)
    assert "stronger generator" in reasons[0]

    comparable, quality = _fluency_case(1, suspect_real=1.0, suspect_generated=0.85, generator_real=1.0)
    assert not quality.fired
    verdict, _ = decide(
        comparable.p_value, 0.05, negative_control_p=0.5, text_auroc=comparable.text_auroc, quality=quality
    )
    assert verdict == "not distinguishable"

    trained, quality = _fluency_case(2, suspect_real=0.6, suspect_generated=0.85, generator_real=1.0)
    assert not quality.fired and quality.suspect_on_real < quality.generator_on_real
    verdict, _ = decide(trained.p_value, 0.05, negative_control_p=0.5, text_auroc=trained.text_auroc, quality=quality)
    assert verdict == "consistent"


def test_the_text_separation_check_fires_only_near_perfect_separation() -> None:
    common = {"negative_control_p": 0.5, "quality": QUIET}
    assert decide(0.01, 0.05, text_auroc=0.93, **common) == ("consistent", [])
    verdict, reasons = decide(0.01, 0.05, text_auroc=0.97, **common)
    assert verdict == "withheld" and len(reasons) == 1 and "AUROC 0.970 >= 0.95" in reasons[0]
    verdict, reasons = decide(0.01, 0.05, negative_control_p=0.01, text_auroc=0.5, quality=None)
    assert verdict == "withheld" and [r.split(":")[0] for r in reasons] == ["negative control", "generator quality"]


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


@pytest.mark.train
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
    # the generator's own losses (nats per byte), the generator-quality check's yardstick, travel with the set
    losses = [value for p in first.pairs for value in p[GENERATOR_LOSSES].values()]
    assert len(losses) == 3 * 45 and all(0 < value < 20 for value in losses)
    stored = first.write(tmp_path / "set.json")
    assert read_synthetic_set(stored, work=work).pairs == json.loads(json.dumps(first.pairs))
    data = json.loads(stored.read_text())
    for pair in data["pairs"]:
        del pair[GENERATOR_LOSSES]
    stored.write_text(json.dumps(data))
    with pytest.raises(InputError, match="no generator losses"):
        read_synthetic_set(stored)


@pytest.mark.train
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


@pytest.mark.train
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
    assert 0 <= report["text_separation"]["auroc"] <= 1 and "negative_control" in report
    quality = report["generator_quality"]
    assert quality["margin"] == pytest.approx(quality["suspect_on_generated"] - quality["generator_on_real"])
    assert quality["fired"] == (quality["margin"] > 0) and "safeguard generator quality" in printed
    assert (report["verdict"] == "withheld") == bool(report["withheld_by"])
    other = tmp_path / "other.txt"
    _work(other, 12 * 90, seed=9)
    assert main([*test[:4], str(other), *test[5:], "--output-dir", str(tmp_path / "r2")]) != 0
    assert "made from another text" in capsys.readouterr().err
    assert main(["dataset-test", "--suspect", str(work), "--output-dir", str(tmp_path / "r3")]) != 0
    assert "--synthetic-control" in capsys.readouterr().err
