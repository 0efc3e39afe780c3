"""Verbatim extraction: match statistics against a brute-force reference, greedy decoding against
``generate(do_sample=False)``, a tiny model trained to memorise a text extracts it (and an untrained one does
not), the chance check flags formulaic text, and every bad input is refused with its fix."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import make_tiny_model

from llm_mia.backends.loading import ModelSettings
from llm_mia.cli import main
from llm_mia.engine.greedy import greedy_continuations
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.methods.continuation_api import continuation_ids, normalise_chat_reply, resolve_api_mode
from llm_mia.methods.extraction import ProbeSettings, best_of, longest_common_substring, match_length
from llm_mia.workflows.extraction import ExtractionTestSettings, run_extraction_probe, run_extraction_test

tokens = st.lists(st.integers(0, 3), max_size=12)


def brute_match(g: list[int], x: list[int]) -> int:
    n = 0
    while n < min(len(g), len(x)) and g[n] == x[n]:
        n += 1
    return n


def brute_lcs(g: list[int], x: list[int]) -> int:
    best = 0
    for a in range(len(g)):
        for b in range(len(x)):
            for n in range(1, min(len(g) - a, len(x) - b) + 1):
                if g[a : a + n] == x[b : b + n]:
                    best = max(best, n)
    return best


@settings(max_examples=300, deadline=None)
@given(tokens, tokens)
def test_match_statistics_equal_a_brute_force_reference(g: list[int], x: list[int]) -> None:
    assert match_length(g, x) == brute_match(g, x)
    assert longest_common_substring(g, x) == brute_lcs(g, x)
    assert longest_common_substring(g, x) >= match_length(g, x)


def test_the_best_of_several_continuations_is_the_longest_match_then_the_longest_run() -> None:
    target = [1, 2, 3, 4]
    assert best_of([[1, 9, 3, 4], [1, 2, 9], [9, 2, 3, 4]], target)[0] == 1  # M = 2 beats M = 1 and M = 0
    assert best_of([[9, 2, 3, 4], [1, 9]], target)[0] == 1  # equal M (0 vs 1)? no: M = 1 wins
    assert best_of([[9, 9], [9, 2, 3, 4]], target)[0] == 1  # equal M = 0: the longer common run wins


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_greedy_decoding_equals_generate_token_for_token_and_resumes_from_the_cache(
    arch: str, tiny_loaded, tmp_path: Path
) -> None:
    from llm_mia.engine.stats_cache import StatsCache

    loaded = tiny_loaded[arch]
    tokenizer = loaded.tokenizer
    texts = ["The old lighthouse stood at the edge of", "In the spring the village held a", "Scientists measure the",
             "To make a simple tomato sauce, warm", "zz qq the the of a b", "Could you pass the salt"]  # fmt: skip
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"][:6] for t in texts]
    cache = StatsCache(tmp_path / "stats.sqlite")
    heard: list[tuple[str, list[int]]] = []
    batched = greedy_continuations(prompts, loaded, new_tokens=24, batch_size=4, cache=cache, progress=False)
    for prompt, result in zip(prompts, batched, strict=True):
        ids = torch.tensor([list(loaded.prefix_ids) + prompt])
        with torch.inference_mode():
            out = loaded.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=24,
                pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        expected = out[0, ids.shape[1] :].tolist()
        if tokenizer.eos_token_id in expected:  # generate pads after end-of-text; greedy_continuations stops
            expected = expected[: expected.index(tokenizer.eos_token_id) + 1]
        assert result.token_ids.tolist() == expected
        assert result.logprob.shape == result.token_ids.shape and (result.logprob <= 0).all()
    again = greedy_continuations(
        prompts, loaded, new_tokens=24, batch_size=4, cache=cache, progress=False,
        observer=lambda event, indices: heard.append((event, indices)),
    )  # fmt: skip
    assert heard == [("from cache", list(range(6)))]  # nothing decoded again
    assert all((a.token_ids == b.token_ids).all() for a, b in zip(batched, again, strict=True))
    one_at_a_time = greedy_continuations(prompts, loaded, new_tokens=24, batch_size=1, progress=False)
    assert [r.token_ids.tolist() for r in one_at_a_time] == [r.token_ids.tolist() for r in batched]


# ------------------------------------------------------------------ a tiny model that memorised a text

WORDS = sorted({w for w in Path(__file__).with_name("tiny_models.py").read_text().split() if w.isalpha()})


def random_work(seed: int, words: int = 40) -> str:
    """A text of random words: every work is drawn alike, so works are exchangeable by construction."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def train(base: Path, texts: list[str], output: Path, *, steps: int = 60, lr: float = 1e-2) -> Path:
    """Fine-tune the tiny model at ``base`` on ``texts`` (one padded batch, each text a sequence of its own) until
    it has memorised them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    width = max(map(len, encoded))
    ids = torch.tensor([e + [tokenizer.pad_token_id] * (width - len(e)) for e in encoded])  # (B, T)
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded])
    labels = ids.masked_fill(mask == 0, -100)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return output


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tiny llama, once as built and once trained on the suspect work (ten short texts of one work, each one
    passage of k + L = 20 tokens or a little more) and a licence; a reference trained on the licence and other
    text, never on the work."""
    root = tmp_path_factory.mktemp("memorised")
    base = make_tiny_model(root / "base", "llama", max_positions=128, vocab_size=400)
    work = [random_work(seed, words=6) for seed in range(1, 11)]
    licence = (
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
        "associated documentation files, to deal in the Software without restriction."
    )
    other = [random_work(seed, words=6) for seed in (101, 102)]
    target = train(base, [*work, licence], root / "target")
    reference = train(base, [licence, *other], root / "reference")
    return SimpleNamespace(base=base, target=target, reference=reference, work=work, licence=licence)


def probe_settings(model: Path, reference: Path | None = None, **extra) -> ExtractionTestSettings:
    return ExtractionTestSettings(
        models=ModelSettings(model=str(model), reference=str(reference) if reference else None, device="cpu"),
        probe=ProbeSettings(prefix_tokens=8, target_tokens=12),
        cache=False,
        progress=False,
        **extra,
    )


@pytest.mark.train
def test_a_model_trained_to_memorise_a_text_extracts_it_and_an_untrained_one_does_not(memorised) -> None:
    documents = [Document(id=f"work{i}", text=t) for i, t in enumerate(memorised.work)]
    trained = run_extraction_probe(documents, probe_settings(memorised.target)).rows
    untrained = run_extraction_probe(documents, probe_settings(memorised.base)).rows
    # one passage per text, or two where a text's words tokenize long (the word pool is this suite's own source)
    assert len(trained) == len(untrained) >= 10
    assert sum(row["exact"] for row in trained) >= 8
    assert not any(row["exact"] for row in untrained) and max(row["match_tokens"] for row in untrained) <= 3
    row = trained[0]  # the generated tokens are kept, and the target's are the passage's own
    assert row["generated_ids"] == row["target_ids"] and row["generated_text"].strip()
    assert row["target_text"] in memorised.work[0] and row["prefix_text"] + row["target_text"] in memorised.work[0]


def test_the_chance_check_flags_formulaic_text_and_leaves_it_out_of_the_claim(memorised) -> None:
    documents = [Document(id="licence", text=memorised.licence)]
    documents += [Document(id=f"work{i}", text=t) for i, t in enumerate(memorised.work)]
    rows = run_extraction_probe(documents, probe_settings(memorised.target, memorised.reference)).rows
    licence, work = rows[0], rows[1:]
    # the target continues both; only the licence is continued by a model that never saw the work
    assert licence["source"] == "licence" and licence["exact"] and licence["formulaic"]
    assert licence["ref_match_tokens"] >= 6
    assert sum(r["exact"] for r in work) >= 8 and not any(r["formulaic"] for r in work)


@pytest.mark.slow
def test_the_work_level_test_finds_the_memorised_work_among_control_works(memorised, tmp_path: Path) -> None:
    suspect = tmp_path / "suspect.jsonl"
    suspect.write_text("".join(json.dumps({"id": f"part{i}", "text": t}) + "\n" for i, t in enumerate(memorised.work)))
    control = tmp_path / "control.jsonl"  # 24 control works of two passages each, drawn as the work was
    control.write_text(
        "".join(json.dumps({"id": f"c{s}", "text": random_work(500 + s, words=12)}) + "\n" for s in range(24))
    )
    settings = probe_settings(memorised.target, memorised.reference, splits=3)
    report = run_extraction_test(suspect, control, settings)
    evidence = report.report["passage_evidence"]
    assert report.result.design == "work-level"
    assert report.result.work_test.p_value == pytest.approx(1 / report.result.work_test.n_labellings)
    assert evidence["control_extracted"] == 0 and len(evidence["extracted"]) >= 8
    written = {p.name for p in report.write(tmp_path / "out")}
    assert {"report.json", "extraction.jsonl", "match_lengths.png", "work_test.png"} <= written
    assert any("extracted:" in line for line in report.summary_lines())
    untrained = run_extraction_test(suspect, control, probe_settings(memorised.base, splits=3))
    assert untrained.result.p_value > 0.05 and untrained.verdict != "consistent"


# ------------------------------------------------------------------ refusals


def test_every_bad_setting_is_refused_with_the_fix() -> None:
    cases = [
        (dict(probe=ProbeSettings(prefix_tokens=8, target_tokens=8)), None),
        (dict(samples=3), "give --temperature > 0"),
        (dict(temperature=-1.0), "0 is greedy"),
        (dict(statistic="reference-gap"), "--reference"),
        (dict(api_mode="fax"), "choose one of"),
        (dict(tokenizer="smollm2-135m"), "for a target behind an API"),
    ]
    for extra, message in cases:
        if message is None:
            ExtractionTestSettings(**extra)
            continue
        with pytest.raises(LlmMiaError, match=message):
            ExtractionTestSettings(**extra)
    with pytest.raises(LlmMiaError, match=r"--min-match 9 is not in 1\.\.8"):
        ProbeSettings(prefix_tokens=8, target_tokens=8, min_match=9)
    with pytest.raises(LlmMiaError, match="at least 1 token"):
        ProbeSettings(prefix_tokens=0)


def test_k_plus_l_longer_than_the_window_and_texts_shorter_than_k_plus_l_are_refused(tiny_model_dirs) -> None:
    model = tiny_model_dirs["gpt2"]  # a window of 256 tokens
    long_settings = ExtractionTestSettings(
        models=ModelSettings(model=str(model), device="cpu"), probe=ProbeSettings(200, 100), cache=False
    )
    with pytest.raises(LlmMiaError, match=r"k \+ L = 200 \+ 100 = 300 tokens is longer than the window"):
        run_extraction_probe([Document(id="a", text="some text")], long_settings)
    short = ExtractionTestSettings(models=ModelSettings(model=str(model), device="cpu"), cache=False, progress=False)
    with pytest.raises(LlmMiaError, match=r"every text is shorter than k \+ L = 50 \+ 50 = 100 tokens"):
        run_extraction_probe([Document(id="a", text="a short text")], short)


def test_an_endpoint_without_completions_is_refused_naming_the_chat_mode() -> None:
    found = SimpleNamespace(model_version=None, notes=["completions endpoint: HTTP 404"], chat="text only")
    model = SimpleNamespace(capabilities=found, spec=SimpleNamespace(name="api:chatty"), api=SimpleNamespace(root="u"))
    with pytest.raises(LlmMiaError, match=r"no working completions endpoint.*--api-mode chat"):
        resolve_api_mode(model, "completions")
    assert resolve_api_mode(model, "auto") == "chat"
    found.chat = "no (HTTP 404)"
    with pytest.raises(LlmMiaError, match="neither completions nor chat"):
        resolve_api_mode(model, "auto")


def test_cli_refuses_a_suspect_without_controls_and_a_dry_run_without_an_api(capsys) -> None:
    assert main(["extract-test", "--suspect", "x.txt", "--output-dir", "out"]) == 2
    assert "--suspect needs --control" in capsys.readouterr().err
    assert main(["extract-test", "--dry-run"]) == 2
    assert "model behind an API" in capsys.readouterr().err


def test_api_replies_are_counted_in_the_cutting_tokenizers_tokens(tiny_loaded) -> None:
    tokenizer = tiny_loaded["gpt2"].tokenizer
    text = "The old lighthouse stood at the edge of the cliff"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    cut = offsets[4][0]  # the prefix ends at a token boundary, as every passage's prefix does
    assert continuation_ids(tokenizer, text[:cut], text[cut:]) == ids[4:]
    assert normalise_chat_reply(text[:cut] + text[cut:], text[:cut], text[cut:]) == text[cut:]
