"""The shadow-model attacks on synthetic signal matrices, against slow, obviously-correct reference
implementations (a Python loop per document with scipy.stats and the statistics module), and against analytic
AUROCs for Gaussian IN/OUT signals of known separation."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy.stats import norm

from llm_mia.errors import InputError, NotFittedError
from llm_mia.shadow.attacks import LiraOffline, LiraOnline, ReferenceOne, Rmia, Shokri, phi
from llm_mia.shadow.inclusion import check_inclusion, inclusion_matrix, target_half
from llm_mia.shadow.signals import MEAN_LL, SignalMatrix
from llm_mia.stats.metrics import auroc


def mean_ll_from_phi(values: np.ndarray) -> np.ndarray:
    """The mean token log-likelihood whose phi (logit of exp(mean_ll)) is ``values``: log sigmoid(phi)."""
    return -np.log1p(np.exp(-values))


def synthetic(n: int, k: int, *, shift: float, spread: float, noise: float = 1.0, seed: int = 0):
    """Per document a difficulty d_i ~ N(-4, spread^2) (a language model's geometric-mean token probability is
    around e^-4); under a model phi = d_i + shift * IN + N(0, noise^2).
    Returns the shadow matrix, the target's signals, the target's membership and the z documents' matrices."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(-4, spread, n)
    inclusion = inclusion_matrix(n, k, seed=seed)
    shadow_phi = difficulty[:, None] + shift * inclusion + rng.normal(0, noise, (n, k))
    members = target_half(n, seed=seed)
    target_phi = difficulty + shift * members + rng.normal(0, noise, n)
    z = 300
    z_difficulty = rng.normal(-4, spread, z)
    z_phi = z_difficulty[:, None] + rng.normal(0, noise, (z, k))
    z_target = z_difficulty + rng.normal(0, noise, z)
    ids = tuple(f"d{i}" for i in range(n))
    shadows = SignalMatrix(ids, tuple(f"m{j}" for j in range(k)), {MEAN_LL: mean_ll_from_phi(shadow_phi)}, inclusion)
    population = SignalMatrix(
        tuple(f"z{i}" for i in range(z)),
        shadows.models,
        {MEAN_LL: mean_ll_from_phi(z_phi)},
        np.zeros((z, k), dtype=bool),
    )
    return shadows, {MEAN_LL: mean_ll_from_phi(target_phi)}, members, population, {MEAN_LL: mean_ll_from_phi(z_target)}


def pooled(values_per_document: list[list[float]]) -> float:
    squares = sum(sum((v - statistics.fmean(vs)) ** 2 for v in vs) for vs in values_per_document if len(vs) >= 2)
    dof = sum(len(vs) - 1 for vs in values_per_document if len(vs) >= 2)
    return math.sqrt(squares / dof)


def test_phi_inverts_the_synthetic_map_and_is_monotone() -> None:
    values = np.array([-5.0, -0.3, 0.0, 2.0, 9.0])
    assert np.allclose(phi(mean_ll_from_phi(values)), values, atol=1e-9)
    assert np.all(np.diff(phi(np.linspace(-8, -1e-6, 50))) > 0)


@pytest.mark.parametrize("variance", ["per-example", "global"])
def test_lira_matches_a_slow_reference(variance: str) -> None:
    shadows, target, _, _, _ = synthetic(60, 8, shift=1.0, spread=2.0, seed=1)
    phis, x = phi(shadows.signal(MEAN_LL)), phi(target[MEAN_LL])
    ins = [[phis[i, j] for j in range(8) if shadows.inclusion[i, j]] for i in range(60)]
    outs = [[phis[i, j] for j in range(8) if not shadows.inclusion[i, j]] for i in range(60)]
    shared = pooled(ins + outs)  # online, global: one SD from the IN and the OUT residuals together
    sd_out_global = pooled(outs)  # offline, global: the OUT residuals
    offline = LiraOffline(variance=variance).fit(shadows).score(target).scores
    online = LiraOnline(variance=variance).fit(shadows).score(target).scores
    for i in range(60):
        s_in = statistics.stdev(ins[i]) if variance == "per-example" else shared
        s_out = statistics.stdev(outs[i]) if variance == "per-example" else shared
        mu_in, mu_out = statistics.median(ins[i]), statistics.median(outs[i])
        s_offline = statistics.stdev(outs[i]) if variance == "per-example" else sd_out_global
        assert offline[i] == pytest.approx(-math.log(norm.sf(x[i], mu_out, s_offline)), rel=1e-9, abs=1e-9)
        expected = norm.logpdf(x[i], mu_in, s_in) - norm.logpdf(x[i], mu_out, s_out)
        assert online[i] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_rmia_matches_a_slow_reference() -> None:
    shadows, target, _, population, target_z = synthetic(40, 4, shift=1.0, spread=1.0, seed=2)
    a, gamma = 0.3, 1.5
    scores = Rmia(a=a, gamma=gamma).fit(shadows, population).score(target, target_z).scores

    def ratio(p_target: float, p_out: list[float]) -> float:
        return p_target / ((1 + a) / 2 * statistics.fmean(p_out) + (1 - a) / 2)

    p, pz = np.exp(shadows.signal(MEAN_LL)), np.exp(population.signal(MEAN_LL))
    ratios_z = [ratio(math.exp(target_z[MEAN_LL][i]), list(pz[i])) for i in range(len(population.ids))]
    for i in range(40):
        outs = [p[i, j] for j in range(4) if not shadows.inclusion[i, j]]
        r = ratio(math.exp(target[MEAN_LL][i]), outs)
        share = sum(r / rz > gamma for rz in ratios_z) / len(ratios_z)
        assert scores[i] == pytest.approx(share)


def test_shokri_and_reference_one_read_what_they_say() -> None:
    shadows, target, members, population, target_z = synthetic(200, 4, shift=1.5, spread=0.0, seed=3)
    ref = ReferenceOne().fit(shadows, population).score(target, target_z).scores
    values, z_values = shadows.signal(MEAN_LL), population.signal(MEAN_LL)
    for i in range(200):
        j = next(j for j in range(4) if not shadows.inclusion[i, j])
        offset = statistics.median(target_z[MEAN_LL][z] - z_values[z, j] for z in range(len(population.ids)))
        assert ref[i] == pytest.approx(target[MEAN_LL][i] - values[i, j] - offset)
    # one signal, one logistic regression: its log-odds are increasing in phi, so it ranks as phi does
    scores = Shokri().fit(shadows).score(target).scores
    assert auroc(scores, members.astype(int)) == pytest.approx(auroc(target[MEAN_LL], members.astype(int)))


@pytest.mark.parametrize("attack", ["lira-offline", "lira-online", "rmia", "shokri"])
def test_auroc_is_the_analytic_value_for_gaussian_signals(attack: str) -> None:
    """Members' phi shifted by 1 SD of the noise: an attack that knows each document's OUT mean reaches
    AUROC = Phi(1 / sqrt(2)) = 0.760. Documents differ in difficulty (SD 2), so the target's raw signal alone
    reaches only Phi(1 / sqrt(2 (1 + 4))) = 0.674: calibrating per document is what the shadow models buy."""
    n, k = 2000, 64
    shadows, target, members, population, target_z = synthetic(n, k, shift=1.0, spread=2.0, seed=4)
    labels = members.astype(int)
    if attack == "rmia":
        model = Rmia().fit(shadows, population)
        scores = model.score(target, target_z).scores
        assert model.a_used_ >= 0.8  # tuned: (1 - a)/2 would swamp probabilities this small
        untuned = Rmia(a=0.3).fit(shadows, population).score(target, target_z).scores
        assert auroc(untuned, labels) < 0.71
    elif attack == "shokri":
        shadows, target, members, _, _ = synthetic(n, k, shift=1.0, spread=0.0, seed=4)
        labels = members.astype(int)
        scores = Shokri().fit(shadows).score(target).scores
    else:
        model = LiraOffline() if attack == "lira-offline" else LiraOnline()
        scores = model.fit(shadows).score(target).scores
        assert model.variance_used_ == "per-example"  # 32 models per side
    analytic = norm.cdf(1 / math.sqrt(2))
    standard_error = math.sqrt(analytic * (1 - analytic) / (n / 2))  # a conservative bound for AUROC's SE
    measured = auroc(scores, labels)
    # fitted means from 32 models carry 1/32 of the noise variance: at most a 0.005 loss against the oracle
    assert abs(measured - analytic) < 3 * standard_error + 0.01, (attack, measured, analytic)
    if attack != "shokri":
        assert auroc(target[MEAN_LL], labels) < 0.71  # the uncalibrated signal, for contrast


def test_lira_offline_never_reads_an_in_score() -> None:
    shadows, target, _, _, _ = synthetic(100, 6, shift=1.0, spread=1.0, seed=5)
    values = shadows.signal(MEAN_LL)
    poisoned = SignalMatrix(
        shadows.ids, shadows.models, {MEAN_LL: np.where(shadows.inclusion, np.nan, values)}, shadows.inclusion
    )
    garbage = SignalMatrix(
        shadows.ids, shadows.models, {MEAN_LL: np.where(shadows.inclusion, 1e9, values)}, shadows.inclusion
    )
    for variance in ("per-example", "global"):
        reference = LiraOffline(variance=variance).fit(shadows).score(target).scores
        for other in (poisoned, garbage):
            assert np.array_equal(LiraOffline(variance=variance).fit(other).score(target).scores, reference)


def test_documents_with_too_few_out_models_get_a_null_score_and_a_status() -> None:
    shadows, target, _, _, _ = synthetic(30, 6, shift=1.0, spread=1.0, seed=6)
    inclusion = shadows.inclusion.copy()
    inclusion[0] = [True, True, True, True, True, False]  # one OUT model
    inclusion[1] = True  # none
    changed = SignalMatrix(shadows.ids, shadows.models, shadows.values, inclusion)
    scored = LiraOffline(variance="per-example").fit(changed).score(target)
    assert np.isnan(scored.scores[:2]).all() and np.isfinite(scored.scores[2:]).all()
    assert scored.status[0].startswith("1 OUT model") and scored.status[1].startswith("0 OUT model")
    online = LiraOnline(variance="per-example").fit(changed).score(target)
    assert np.isnan(online.scores[:2]).all() and np.isfinite(online.scores[2:]).all()
    # two models: one IN and one OUT per document, no variance can be fitted, every document is null
    two = shadows.select([0, 1])
    assert np.isnan(LiraOffline().fit(two).score(target).scores).all()


def test_inclusion_matrix_is_balanced_for_every_even_prefix_and_reproducible() -> None:
    matrix = inclusion_matrix(101, 16, seed=7)
    assert np.array_equal(matrix, inclusion_matrix(101, 16, seed=7))
    assert not np.array_equal(matrix, inclusion_matrix(101, 16, seed=8))
    for k in (2, 4, 8, 16):
        assert (matrix[:, :k].sum(axis=1) == k // 2).all()
    assert set(matrix.sum(axis=0).tolist()) == {50, 51}
    # pairs are complementary, different pairs independent halves
    assert (matrix[:, 0] != matrix[:, 1]).all() and not np.array_equal(matrix[:, 0], matrix[:, 2])
    assert target_half(101, seed=7).sum() == 50


def test_an_inclusion_matrix_that_does_not_match_the_population_is_refused_with_the_ids() -> None:
    matrix = inclusion_matrix(3, 2, seed=0)
    with pytest.raises(InputError, match="missing from the matrix: c; not in the population: x"):
        check_inclusion(matrix, ["a", "b", "x"], ["a", "b", "c"])
    with pytest.raises(InputError, match="another order"):
        check_inclusion(matrix, ["b", "a", "c"], ["a", "b", "c"])


UNFITTED = [LiraOffline(), LiraOnline(), Rmia(), Shokri(), ReferenceOne()]


@pytest.mark.parametrize("attack", UNFITTED, ids=lambda a: a.name)
def test_scoring_before_fit_is_a_not_fitted_error_that_names_the_missing_call(attack) -> None:
    shadows, target, _, population, target_population = synthetic(20, 4, shift=1.0, spread=0.5)
    two_sided = isinstance(attack, Rmia | ReferenceOne)
    missing = r"not fitted yet; call fit\(shadows(, population)?\) before score"
    with pytest.raises(NotFittedError, match=missing) as error:
        attack.score(target, target_population) if two_sided else attack.score(target)
    assert ("population" in str(error.value)) == two_sided
    assert isinstance(error.value, AttributeError)  # scikit-learn's convention: also an AttributeError
    fitted = attack.fit(shadows, population) if two_sided else attack.fit(shadows)
    scores = fitted.score(target, target_population) if two_sided else fitted.score(target)
    assert np.isfinite(scores.scores).sum() > 0
