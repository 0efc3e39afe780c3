"""Scorer definitions (hand-computed examples), identities, the registry, and the reference scorer."""

from __future__ import annotations

import inspect
import math
import zlib

import numpy as np
import pytest
from tiny_models import make_tiny_model

from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.backends.token_stats import TokenStats
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError, ParameterError, UnknownNameError
from llm_mia.scoring.scorers import ScoreUnavailable, all_scorers, get_scorer, parse_scorer_specs
from llm_mia.scoring.scorers.likelihood import loss, lowercase, perplexity
from llm_mia.scoring.scorers.likelihood import zlib as zlib_scorer
from llm_mia.scoring.scorers.min_k import min_k, min_k_plus_plus
from llm_mia.scoring.scorers.reference import reference

QUIET = ExtractionSettings(progress=False)


def stats(logprob, mu=None, sigma=None, *, n_bytes=100, zlib_bytes=50, tokenizer_id="tok") -> TokenStats:
    logprob = np.asarray(logprob, dtype=np.float32)
    size = logprob.shape[0]
    return TokenStats(
        token_ids=np.arange(size),
        logprob=logprob,
        mu=np.asarray(mu if mu is not None else np.zeros(size), dtype=np.float32),
        sigma=np.asarray(sigma if sigma is not None else np.ones(size), dtype=np.float32),
        rank=np.ones(size, dtype=np.int64),
        top1_logprob=np.zeros(size, dtype=np.float32),
        n_bytes=n_bytes,
        n_bytes_scored=n_bytes,
        zlib_bytes=zlib_bytes,
        n_tokens=size,
        bos_added=True,
        n_windows=1,
        tokenizer_id=tokenizer_id,
    )


def test_hand_computed_values():
    two = stats([-1.0, -3.0])
    assert loss(two) == pytest.approx(-2.0)
    assert perplexity(two) == pytest.approx(-math.exp(2.0))
    assert zlib_scorer(two) == pytest.approx(-2.0 / 50)
    assert lowercase(two, stats([-2.0, -4.0])) == pytest.approx(3.0 / 2.0)
    # floor(0.4 * 5) = 2 smallest of [-1, -5, -2, -4, -3] are -5, -4
    assert min_k(stats([-1, -5, -2, -4, -3]), k=0.4) == pytest.approx(-4.5)
    # floor(0.1 * 5) = 0 -> at least one token: the minimum
    assert min_k(stats([-1, -5, -2, -4, -3]), k=0.1) == pytest.approx(-5.0)
    # z = [(-1+2)/1, (-3+2)/2] = [1, -0.5]; floor(0.5 * 2) = 1 smallest
    assert min_k_plus_plus(stats([-1, -3], mu=[-2, -2], sigma=[1, 2]), k=0.5) == pytest.approx(-0.5)
    # sigma = 0 gives z = 0 rather than a division by zero
    assert min_k_plus_plus(stats([-1, -3], mu=[-1, -2], sigma=[0, 2]), k=1.0) == pytest.approx((0 - 0.5) / 2)


def test_min_k_with_k_one_equals_loss():
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 50):
        record = stats(-rng.gamma(2.0, 1.5, size))
        assert min_k(record, k=1.0) == pytest.approx(loss(record), rel=1e-12)


def test_scorers_refuse_documents_without_scored_tokens():
    empty = TokenStats.empty(status="ok", n_bytes=0, zlib_bytes=8, n_tokens=0, bos_added=False, tokenizer_id="t")
    for function in (loss, perplexity, zlib_scorer, min_k, min_k_plus_plus):
        with pytest.raises(ScoreUnavailable):
            function(empty)
    with pytest.raises(ScoreUnavailable, match="undefined"):
        lowercase(stats([0.0]), stats([-1.0]))
    with pytest.raises(ScoreUnavailable, match="k must be"):
        min_k(stats([-1.0]), k=1.5)


def test_reference_per_token_and_per_byte():
    target = stats([-1.0, -2.0], n_bytes=10)
    same_tokenizer = stats([-3.0, -2.0, -4.0], n_bytes=10)
    assert reference(target, same_tokenizer) == pytest.approx(3.0 - 1.5)
    other_tokenizer = stats([-3.0, -2.0, -4.0], n_bytes=10, tokenizer_id="other")
    assert reference(target, other_tokenizer) == pytest.approx(9.0 / 10 - 3.0 / 10)
    assert reference(target, target) == 0.0


def test_every_scorer_has_doc_direction_and_no_var_kwargs():
    for scorer in all_scorers().values():
        assert "higher" in scorer.doc.lower(), scorer.name
        for parameter in inspect.signature(scorer.function).parameters.values():
            assert parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)


def test_unknown_scorer_suggests_close_names():
    with pytest.raises(UnknownNameError) as error:
        get_scorer("min-k")
    message = str(error.value)
    assert "did you mean" in message and "min_k" in message and "available: loss" in message


def test_scorer_specs_expand_grids_and_name_columns():
    calls = parse_scorer_specs(["loss", "min_k:k=0.1,0.2,0.5", "min_k_plus_plus:k=0.3"], has_reference=False)
    assert [c.column for c in calls] == ["loss", "min_k[k=0.1]", "min_k", "min_k[k=0.5]", "min_k_plus_plus[k=0.3]"]
    assert calls[1].params == {"k": 0.1}
    with pytest.raises(UnknownNameError, match="it takes: k"):
        parse_scorer_specs(["min_k:q=0.1"], has_reference=False)
    with pytest.raises(ParameterError, match="k=abc is not a float"):
        parse_scorer_specs(["min_k:k=abc"], has_reference=False)
    with pytest.raises(LlmMiaError, match="--reference"):
        parse_scorer_specs(["reference"], has_reference=False)
    with pytest.raises(LlmMiaError, match="twice"):
        parse_scorer_specs(["loss", "loss"], has_reference=False)
    default = [c.column for c in parse_scorer_specs(None, has_reference=False)]
    assert "reference" not in default and {"loss", "zlib", "lowercase", "min_k", "min_k_plus_plus"} <= set(default)


def test_zlib_scorer_uses_the_compressed_text_length(tiny_loaded):
    text = "the river carried cold water past old mills " * 3
    (record,) = extract([text], tiny_loaded["llama"], QUIET)
    assert record.zlib_bytes == len(zlib.compress(text.encode("utf-8")))
    assert zlib_scorer(record) == pytest.approx(-record.nll / len(zlib.compress(text.encode("utf-8"))))


def test_reference_with_the_target_as_its_own_reference_is_zero(tiny_loaded):
    loaded = tiny_loaded["gpt2"]
    records = extract(["the river carried cold water", "quiet fields of barley"], loaded, QUIET)
    for record in records:
        assert reference(record, record) == 0.0


def test_reference_with_a_different_tokenizer_compares_per_byte(tiny_loaded, tmp_path):
    target = tiny_loaded["gpt2"]  # vocabulary 300, no BOS
    other = load_model(ModelSpec(str(make_tiny_model(tmp_path / "ref", "llama", vocab_size=420)), device="cpu"))
    assert other.tokenizer_id != target.tokenizer_id
    text = "the river carried cold water past old mills while children counted boats"
    (t,) = extract([text], target, QUIET)
    (r,) = extract([text], other, QUIET)
    first_token = target.tokenizer.decode(target.tokenizer(text, add_special_tokens=False)["input_ids"][:1])
    target_bytes = len(text.encode()) - len(first_token.encode())  # the first token has no predecessor
    reference_bytes = len(text.encode())  # BOS: every byte is scored
    expected = -float(np.sum(r.logprob, dtype=np.float64)) / reference_bytes - (
        -float(np.sum(t.logprob, dtype=np.float64)) / target_bytes
    )
    assert reference(t, r) == pytest.approx(expected, rel=1e-9)


def test_reference_with_the_same_tokenizer_compares_per_token(tmp_path):
    one = load_model(ModelSpec(str(make_tiny_model(tmp_path / "a", "llama", seed=1)), device="cpu"))
    two = load_model(ModelSpec(str(make_tiny_model(tmp_path / "b", "llama", seed=2)), device="cpu"))
    assert one.tokenizer_id == two.tokenizer_id
    text = "quiet fields of barley where a farmer mended fences"
    (t,) = extract([text], one, QUIET)
    (r,) = extract([text], two, QUIET)
    expected = -np.mean(r.logprob, dtype=np.float64) + np.mean(t.logprob, dtype=np.float64)
    assert reference(t, r) == pytest.approx(expected, rel=1e-9)
    assert reference(t, r) != 0.0
