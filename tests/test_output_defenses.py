"""Inference-time defenses inside the extraction engine, against slow per-position computations from the logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_mia.defenses.output import defended, parse_defense
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.output_defense import defense_noise
from llm_mia.engine.stats_cache import StatsCache
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs

TEXTS = [
    "The old bridge was made of stone and crossed the river twice.",
    "Water ran under the mill all year, and the miller kept geese.",
    "Zebras ate quietly near the fence while the keeper counted them.",
    "A short one.",
]
QUIET = ExtractionSettings(batch_size=4, progress=False)
ARRAYS = ("logprob", "mu", "sigma", "rank", "top1_logprob", "token_ids")


def exact_logprobs(loaded, text: str) -> tuple[torch.Tensor, list[int]]:
    """(positions, V) float64 log-softmax of the undefended model for each scored token, and the token ids."""
    own = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = list(loaded.prefix_ids) + own
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids])).logits[0].double()
    return logits[:-1], ids[1:]  # with a BOS every own token is scored; without one, all but the first


def scores(loaded, calls, texts=TEXTS, settings=QUIET):
    documents = [Document(id=str(i), text=t) for i, t in enumerate(texts)]
    rows = compute_scores(documents, calls, models={"target": loaded}, settings=settings).rows
    return rows


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_temperature_one_and_zero_noise_are_bit_identical_to_no_defense(tiny_loaded, arch) -> None:
    loaded = tiny_loaded[arch]
    plain = extract(TEXTS, loaded, QUIET)
    for spec in ("temperature:t=1", "noise:scale=0", "noise:scale=0;distribution=laplace"):
        got = extract(TEXTS, defended(loaded, spec), QUIET)
        for a, b in zip(plain, got, strict=True):
            for name in ARRAYS:
                assert np.array_equal(getattr(a, name), getattr(b, name)), (spec, name)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.slow
def test_top_k_with_the_whole_vocabulary_equals_no_defense(tiny_loaded, arch) -> None:
    loaded = tiny_loaded[arch]
    calls = parse_scorer_specs(None, has_reference=False)
    plain = scores(loaded, calls)
    whole = scores(defended(loaded, f"top_k:k={len(loaded.tokenizer) + 100}"), calls)
    for a, b in zip(plain, whole, strict=True):
        for call in calls:
            assert b[call.column] == pytest.approx(a[call.column], rel=1e-5, abs=1e-6), call.column


def test_temperature_scales_the_logits_as_a_slow_computation_does(tiny_loaded) -> None:
    loaded = tiny_loaded["llama"]
    got = extract(TEXTS[:2], defended(loaded, "temperature:t=2.5"), QUIET)
    for text, stats in zip(TEXTS[:2], got, strict=True):
        logits, targets = exact_logprobs(loaded, text)
        logp = torch.log_softmax(logits / 2.5, dim=-1)
        p = logp.exp()
        mu = (p * logp).sum(-1)
        sigma = ((p * (logp - mu[:, None]) ** 2).sum(-1)).sqrt()
        expected = logp[torch.arange(len(targets)), targets]
        np.testing.assert_allclose(stats.logprob, expected.numpy(), atol=1e-5)
        np.testing.assert_allclose(stats.mu, mu.numpy(), atol=1e-5)
        np.testing.assert_allclose(stats.sigma, sigma.numpy(), atol=1e-5)


def test_top_k_returns_true_values_inside_and_bounds_outside(tiny_loaded) -> None:
    """A token among the top 3 keeps its exact log-prob and rank; one outside gets the 3rd value and rank 4."""
    loaded = tiny_loaded["gpt2"]
    (stats,) = extract(TEXTS[:1], defended(loaded, "top_k:k=3"), QUIET)
    logits, targets = exact_logprobs(loaded, TEXTS[0])
    logp = torch.log_softmax(logits, dim=-1)
    top = logp.topk(3, dim=-1)
    inside = outside = 0
    for t, target in enumerate(targets):
        if target in top.indices[t].tolist():
            inside += 1
            assert stats.logprob[t] == pytest.approx(float(logp[t, target]), abs=1e-5)
            assert stats.rank[t] == 1 + int((logp[t] > logp[t, target]).sum())
        else:
            outside += 1
            assert stats.logprob[t] == pytest.approx(float(top.values[t, -1]), abs=1e-5)
            assert stats.rank[t] == 4
        q = torch.softmax(top.values[t], dim=0)  # the stated approximation: mu over the returned values
        assert stats.mu[t] == pytest.approx(float((q * top.values[t]).sum()), abs=1e-5)
    assert outside > 0  # a random tiny model puts most tokens outside its top 3: both branches ran


def test_rounding_returns_values_on_the_grid(tiny_loaded) -> None:
    loaded = tiny_loaded["llama"]
    (stats,) = extract(TEXTS[:1], defended(loaded, "round:decimals=1"), QUIET)
    logits, targets = exact_logprobs(loaded, TEXTS[0])
    expected = torch.round(torch.log_softmax(logits.float(), dim=-1)[torch.arange(len(targets)), targets], decimals=1)
    np.testing.assert_allclose(stats.logprob, expected.numpy(), atol=1e-6)
    assert np.allclose(stats.logprob * 10, np.round(stats.logprob * 10), atol=1e-4)


@pytest.mark.slow
def test_noise_is_seeded_independent_of_batch_and_neighbours_and_has_its_scale(tiny_loaded) -> None:
    loaded = tiny_loaded["llama"]
    noisy = defended(loaded, "noise:scale=0.5;seed=3")
    alone = extract(TEXTS[:1], noisy, ExtractionSettings(batch_size=1, progress=False))
    together = extract(list(reversed(TEXTS)), noisy, ExtractionSettings(batch_size=3, progress=False))
    assert np.array_equal(alone[0].logprob, together[-1].logprob)
    other_seed = extract(TEXTS[:1], defended(loaded, "noise:scale=0.5;seed=4"), QUIET)
    assert not np.array_equal(alone[0].logprob, other_seed[0].logprob)
    plain = extract(TEXTS[:1], loaded, QUIET)
    assert not np.allclose(plain[0].logprob, alone[0].logprob, atol=0.05)
    # the noise generator itself: 20,000 entries per row, Gaussian sd 0.5 and Laplace variance 2 S^2
    shape = torch.Size([2, 20_000])
    gaussian = defense_noise(parse_defense("noise:scale=0.5"), shape, [1, 2], "cpu")
    laplace = defense_noise(parse_defense("noise:scale=0.5;distribution=laplace"), shape, [1, 2], "cpu")
    assert gaussian.std().item() == pytest.approx(0.5, rel=0.02)
    assert laplace.var().item() == pytest.approx(2 * 0.25, rel=0.04)
    assert laplace.abs().mean().item() == pytest.approx(0.5, rel=0.02)  # E|X| = S for Laplace(0, S)
    assert not torch.equal(gaussian[0], gaussian[1])


def test_the_defense_is_in_the_record_and_the_cache_key(tiny_loaded, tmp_path) -> None:
    loaded = tiny_loaded["gpt2"]
    cache = StatsCache(tmp_path / "stats.sqlite")
    plain = extract(TEXTS, loaded, QUIET, cache=cache)
    hot = defended(loaded, "temperature:t=3")
    warm = extract(TEXTS, hot, QUIET, cache=cache)
    assert not np.array_equal(plain[0].logprob, warm[0].logprob)  # not served the undefended entry
    assert np.array_equal(extract(TEXTS, hot, QUIET, cache=cache)[0].logprob, warm[0].logprob)
    assert hot.describe()["output_defense"]["spec"] == "temperature:t=3.0"
    assert "output_defense" not in loaded.describe()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("noise:scale=-1", "scale=-1.0 is out of range; need a noise scale >= 0"),
        ("temperature:t=0", "t=0.0 is out of range; need a temperature > 0"),
        ("top_k:k=0", "k=0 is out of range; need k >= 1"),
        ("round:decimals=-2", "decimals >= 0"),
        ("blur:x=1", "unknown kind 'blur'; valid: temperature, noise, round, top_k"),
        ("temperature", "give t=..."),
        ("noise:scale=1;distribution=cauchy", "gaussian or laplace"),
        ("top_k:k=five", "k='five' is not a valid number"),
    ],
)
def test_bad_defense_specs_name_the_valid_range(spec, message) -> None:
    with pytest.raises(LlmMiaError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_defense(spec)


def test_the_cli_scores_a_defended_deployment(tiny_model_dirs, tmp_path, capsys) -> None:
    import json

    from llm_mia.cli import main

    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    outputs = {}
    for name, extra in (("plain", []), ("hot", ["--output-defense", "temperature:t=4"])):
        out = tmp_path / f"{name}.jsonl"
        argv = ["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(source), "--output", str(out)]
        assert main([*argv, "--scorers", "loss", "--device", "cpu", "--no-progress", *extra]) == 0
        outputs[name] = [json.loads(line) for line in out.read_text().splitlines()]
    # a random tiny model is near uniform; T = 4 flattens it further, so every loss moves toward log V
    assert all(h["loss"] != p["loss"] for h, p in zip(outputs["hot"], outputs["plain"], strict=True))
    bad = ["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(source), "--output-defense", "top_k:k=0"]
    assert main(bad) != 0
    assert "k=0 is out of range; need k >= 1" in capsys.readouterr().err
