"""The dataset-level blind check fires on the case it exists for: a suspect text that differs from the control
works without any model (another genre), and stays quiet on a work like the others."""

from __future__ import annotations

import numpy as np

from llm_mia.passages import Passage
from llm_mia.workflows.dataset import blind_safeguard, work_distinctiveness

PASTORAL = ["river", "meadow", "orchard", "shepherd", "cottage", "willow", "harvest", "lantern", "village"]
TECHNICAL = ["server", "cluster", "latency", "endpoint", "pipeline", "container", "deployment", "cache", "query"]
VERBS = ["watched", "crossed", "carried", "followed", "opened", "visited", "mended", "painted"]


def _passages(rng, work, vocabulary, n, side):
    texts = [
        " ".join(f"the {rng.choice(vocabulary)} {rng.choice(VERBS)} the {rng.choice(vocabulary)}" for _ in range(6))
        for _ in range(n)
    ]
    return [Passage(f"{side}:{work}#{i}", work, t, 0, len(t), 0, 24, work=work) for i, t in enumerate(texts)]


def test_one_suspect_work_of_another_genre_is_flagged_and_one_of_the_same_is_not():
    rng = np.random.default_rng(0)
    control = [p for w in range(25) for p in _passages(rng, f"c{w}", PASTORAL, 6, "control")]
    other_genre = _passages(rng, "book", TECHNICAL, 6, "suspect")
    same_genre = _passages(rng, "book", PASTORAL, 6, "suspect")
    texts = [p.text for p in other_genre + control]
    works = [p.work for p in other_genre + control]
    p_value, auroc, ranked = work_distinctiveness(texts, works, "book", seed=0)
    assert ranked == 26 and p_value == 1 / 26 and auroc > 0.9
    guard, detail = blind_safeguard(other_genre, control, design_works=25, alpha=0.05, seed=0)
    assert guard.fired and detail["p_value"] <= 0.05
    quiet, _ = blind_safeguard(same_genre, control, design_works=25, alpha=0.05, seed=0)
    assert not quiet.fired


def test_several_suspect_works_use_group_folds_and_a_permutation_test():
    rng = np.random.default_rng(1)
    control = [p for w in range(10) for p in _passages(rng, f"c{w}", PASTORAL, 5, "control")]
    shifted = [p for w in range(10) for p in _passages(rng, f"s{w}", TECHNICAL, 5, "suspect")]
    alike = [p for w in range(10) for p in _passages(rng, f"s{w}", PASTORAL, 5, "suspect")]
    guard, detail = blind_safeguard(shifted, control, design_works=10, alpha=0.05, seed=0)
    assert guard.fired and detail["grouped_folds"] and "folds over whole works" in guard.detail
    assert not blind_safeguard(alike, control, design_works=10, alpha=0.05, seed=0)[0].fired
    # too few control works to rank one suspect work: reported as not run, never as a pass
    single = _passages(rng, "book", TECHNICAL, 6, "suspect")
    not_run, _ = blind_safeguard(single, control[:20], design_works=4, alpha=0.05, seed=0)
    assert not not_run.ran and "not run" in not_run.detail


def test_control_works_of_one_passage_each_cannot_rank_the_suspect_and_the_check_says_so():
    """Paragraphs shorter than two passages: no control work can be split into halves, so nothing is ranked. The
    check must not run (it once ranked the suspect among zero works and fired with 'p < 1e-06')."""
    rng = np.random.default_rng(2)
    control = [p for w in range(36) for p in _passages(rng, f"c{w}", PASTORAL, 1, "control")]
    suspect = _passages(rng, "book", PASTORAL, 40, "suspect")
    guard, detail = blind_safeguard(suspect, control, design_works=36, alpha=0.05, seed=0)
    assert not guard.ran and not guard.fired and detail == {}
    assert "0 control work(s) with two or more passages, 19 needed" in guard.detail
