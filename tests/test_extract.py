"""The extraction engine against brute-force references computed with the model's own full-logit path."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import llm_mia.engine.extract as extract_module
from llm_mia.engine.extract import (
    STATUS_EMPTY,
    STATUS_NONFINITE,
    STATUS_TOO_SHORT,
    ExtractionSettings,
    extract,
    plan_windows,
)

WORDS = [
    "the",
    "river",
    "carried",
    "cold",
    "water",
    "past",
    "old",
    "mills",
    "while",
    "children",
    "counted",
    "boats",
    "and",
    "birds",
    "above",
    "quiet",
    "fields",
    "of",
    "barley",
    "where",
    "a",
    "farmer",
    "mended",
    "fences",
    "under",
    "grey",
    "clouds",
    ";",
    "numbers",
    "1987",
    "and",
    "42",
    "!",
    "Émile",
    "café",
    "naïve",
    "東京",
    "🙂",
]

QUIET = ExtractionSettings(progress=False)


def random_texts(count: int, seed: int, *, max_words: int = 30) -> list[str]:
    rng = random.Random(seed)
    texts = ["a", "ab", "x y"]  # one- and two-token documents
    while len(texts) < count:
        texts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, max_words))))
    rng.shuffle(texts)
    return texts


def brute_force(loaded, text: str) -> dict[str, np.ndarray]:
    """Per-token statistics from model(ids).logits over the whole text at once, in float64 numpy."""
    content = loaded.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    ids = list(loaded.prefix_ids) + list(content)
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids])).logits[0].double().numpy()  # (L, V)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    first = 1 if not loaded.prefix_ids else len(loaded.prefix_ids)
    rows = logp[first - 1 : len(ids) - 1]  # row j predicts token j + 1
    targets = np.array(ids[first:], dtype=np.int64)
    p = np.exp(rows)
    mu = (p * rows).sum(axis=1)
    return {
        "logprob": rows[np.arange(len(targets)), targets],
        "mu": mu,
        "sigma": np.sqrt((p * (rows - mu[:, None]) ** 2).sum(axis=1)),
        "rank": 1 + (rows > rows[np.arange(len(targets)), targets][:, None]).sum(axis=1),
        "top1_logprob": rows.max(axis=1),
        "token_ids": targets,
    }


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "opt", "llama", "gemma3"])
def test_matches_brute_force_full_logits(tiny_loaded, arch):
    loaded = tiny_loaded[arch]
    texts = random_texts(12, seed=1)
    stats = extract(texts, loaded, ExtractionSettings(batch_size=5, progress=False))
    for text, record in zip(texts, stats, strict=True):
        reference = brute_force(loaded, text)
        if len(reference["token_ids"]) == 0:
            assert record.status == STATUS_TOO_SHORT
            continue
        assert record.ok
        np.testing.assert_array_equal(record.token_ids, reference["token_ids"])
        np.testing.assert_array_equal(record.rank, reference["rank"])
        for field in ("logprob", "mu", "sigma", "top1_logprob"):
            np.testing.assert_allclose(getattr(record, field), reference[field], atol=2e-5, rtol=1e-5, err_msg=field)
        np.testing.assert_allclose(record.entropy, -reference["mu"], atol=2e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "gpt_neox"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_equals_one_at_a_time(tiny_loaded, arch, seed):
    loaded = tiny_loaded[arch]
    texts = random_texts(17, seed=seed, max_words=40)
    batch_size = random.Random(seed).choice([2, 3, 7, 16])
    batched = extract(texts, loaded, ExtractionSettings(batch_size=batch_size, progress=False))
    for text, record in zip(texts, batched, strict=True):
        (alone,) = extract([text], loaded, ExtractionSettings(batch_size=1, progress=False))
        assert record.status == alone.status
        np.testing.assert_array_equal(record.token_ids, alone.token_ids)
        for field in ("logprob", "mu", "sigma", "top1_logprob"):
            np.testing.assert_allclose(getattr(record, field), getattr(alone, field), atol=1e-4, rtol=0)


def test_bos_handling_is_per_tokenizer(tiny_loaded):
    text = "the river carried cold water"
    (with_bos,) = extract([text], tiny_loaded["llama"], QUIET)
    (without_bos,) = extract([text], tiny_loaded["gpt2"], QUIET)
    assert with_bos.bos_added and with_bos.n_scored == with_bos.n_tokens
    assert with_bos.n_bytes_scored == with_bos.n_bytes == len(text.encode())
    assert not without_bos.bos_added and without_bos.n_scored == without_bos.n_tokens - 1
    first_token = tiny_loaded["gpt2"].tokenizer.decode(
        tiny_loaded["gpt2"].tokenizer(text, add_special_tokens=False)["input_ids"][:1]
    )
    assert without_bos.n_bytes_scored == len(text.encode()) - len(first_token.encode())


def test_statuses_for_empty_and_too_short_texts_keep_the_others(tiny_loaded):
    texts = ["", "   \n\t", "a", "the river carried cold water"]
    stats = extract(texts, tiny_loaded["gpt2"], QUIET)
    assert [s.status for s in stats[:3]] == [STATUS_EMPTY, STATUS_EMPTY, STATUS_TOO_SHORT]
    assert stats[3].ok and stats[3].n_scored > 0
    # with BOS, a one-token text is scorable
    assert extract(["a"], tiny_loaded["llama"], QUIET)[0].n_scored == 1


def test_special_token_strings_in_text_are_scored_as_text(tiny_loaded):
    loaded = tiny_loaded["llama"]
    (stats,) = extract(["before <bos> after"], loaded, QUIET)
    bos_id = loaded.prefix_ids[0]
    assert bos_id not in stats.token_ids.tolist()
    assert stats.n_bytes_scored == len(b"before <bos> after")


def test_vocabulary_chunking_does_not_change_results(tiny_loaded, monkeypatch):
    loaded = tiny_loaded["llama"]
    texts = random_texts(6, seed=3)
    whole = extract(texts, loaded, QUIET)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    monkeypatch.setattr(extract_module, "HEAD_CHUNK_BYTES", 3 * vocab * 4)
    monkeypatch.setitem(extract_module.REDUCE_CHUNK_BYTES, "cpu", vocab * 4)
    assert extract_module.vocab_chunk_rows(vocab, "cpu") == (3, 1)
    chunked = extract(texts, loaded, QUIET)
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-6)
        np.testing.assert_allclose(a.sigma, b.sigma, atol=1e-6)


def test_plan_windows_scores_each_token_exactly_once_with_enough_context():
    for content_length in (1, 2, 5, 16, 17, 40, 101):
        for prefix_length in (0, 1):
            for window, stride in ((8, None), (8, 1), (8, 6), (16, 5)):
                capacity = window - prefix_length
                if stride is not None and stride > capacity - 1:
                    continue
                plan = plan_windows(content_length, prefix_length, window=window, stride=stride)
                scored = [t for _, s, e in plan for t in range(s, e)]
                assert scored == list(range(0 if prefix_length else 1, content_length))
                for i, (start, score_start, end) in enumerate(plan):
                    assert end - start <= capacity
                    if i > 0:  # every later-window token has at least capacity - stride tokens before it
                        assert score_start - start >= capacity - (stride or capacity // 2)


def test_plan_windows_rejects_a_stride_without_context():
    with pytest.raises(Exception, match="stride"):
        plan_windows(100, 0, window=8, stride=8)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_long_text_is_windowed_not_truncated(tiny_loaded, arch):
    loaded = tiny_loaded[arch]
    text = " ".join(random.Random(5).choice(WORDS) for _ in range(200))
    window, stride = 24, 8
    (stats,) = extract([text], loaded, ExtractionSettings(window=window, stride=stride, progress=False))
    assert stats.n_tokens > 3 * window
    assert stats.n_scored == stats.n_tokens - (0 if loaded.prefix_ids else 1)
    assert stats.n_windows > 1
    # golden check: each scored token equals the model run on exactly the context its window gave it
    prefix = list(loaded.prefix_ids)
    content = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    scored_index = 0
    for start, score_start, end in plan_windows(len(content), len(prefix), window=window, stride=stride):
        ids = prefix + content[start:end]
        with torch.no_grad():
            logp = torch.log_softmax(loaded.model(torch.tensor([ids])).logits[0].double(), dim=-1)
        for token in range(score_start, end):
            position = len(prefix) + token - start
            expected = logp[position - 1, ids[position]].item()
            assert abs(stats.logprob[scored_index] - expected) < 2e-5
            scored_index += 1
    assert scored_index == stats.n_scored


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_windowed_equals_unwindowed_when_the_text_fits(tiny_loaded, arch):
    loaded = tiny_loaded[arch]
    texts = random_texts(8, seed=7, max_words=10)
    default = extract(texts, loaded, QUIET)
    longest = max(s.n_tokens for s in default) + len(loaded.prefix_ids)
    exact = extract(texts, loaded, ExtractionSettings(window=longest, stride=1, progress=False))
    for a, b in zip(default, exact, strict=True):
        assert a.n_windows == b.n_windows
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-5)


def test_window_larger_than_context_is_refused(tiny_loaded):
    loaded = tiny_loaded["gpt2"]
    with pytest.raises(Exception, match="context length"):
        extract(["text"], loaded, ExtractionSettings(window=loaded.context_length + 1, progress=False))


def test_non_finite_logits_flag_only_that_document(tiny_loaded):
    loaded = tiny_loaded["llama"]
    texts = ["the river carried cold water past old mills and more", "quiet fields"]
    calls = {"n": 0}

    def poison_first_batch(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 1 else output

    # batch size 1 and longest-first order: the first batch is the first (longer) text
    handle = loaded.model.get_output_embeddings().register_forward_hook(poison_first_batch)
    try:
        stats = extract(texts, loaded, ExtractionSettings(batch_size=1, progress=False))
    finally:
        handle.remove()
    assert stats[0].status == STATUS_NONFINITE
    assert stats[1].ok


def test_final_logit_softcapping_is_applied_like_the_model_does(tiny_model_dirs):
    from llm_mia.backends.local import ModelSpec, load_model

    loaded = load_model(ModelSpec(str(tiny_model_dirs["gemma3"]), device="cpu"))
    loaded.model.config.final_logit_softcapping = 0.05  # strong enough to change every log-prob
    text = "the river carried cold water past old mills"
    reference = brute_force(loaded, text)
    (stats,) = extract([text], loaded, QUIET)
    np.testing.assert_allclose(stats.logprob, reference["logprob"], atol=2e-5)
    np.testing.assert_allclose(stats.sigma, reference["sigma"], atol=2e-5)
    loaded.model.config.final_logit_softcapping = None
    (uncapped,) = extract([text], loaded, QUIET)
    assert np.abs(uncapped.logprob - stats.logprob).max() > 1e-3
