"""ReCaLL against a slow implementation from the paper (float64, one text at a time, the prefix re-encoded with
every text), the engine's encoded-once prefix against re-encoding, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from llm_mia.engine.extract import condition_ids, extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs

PREFIX = ["Rain fell on the harbour all night.", "The ferry left at dawn with three passengers."]
TEXTS = [
    "The old bridge was made of stone and crossed the river twice.",
    "Water ran under the mill all year.",
    "Zebras ate quietly near the fence while the keeper counted them.",
    "A short one.",
]


def prefix_file(tmp_path: Path, texts=PREFIX) -> Path:
    path = tmp_path / "prefix.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def mean_ll_float64(model, ids: list[int], scored_from: int) -> float:
    """Mean log p(ids[t] | ids[:t]) over t >= scored_from, in float64, one sequence, no cache."""
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    values = [float(logprobs[t - 1, ids[t]]) for t in range(max(scored_from, 1), len(ids))]
    return sum(values) / len(values)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.slow
def test_recall_matches_a_slow_implementation_from_the_paper(tiny_loaded, tiny_model_dirs, tmp_path, arch) -> None:
    loaded = tiny_loaded[arch]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dirs[arch], dtype=torch.float64).eval()
    tokenizer = loaded.tokenizer
    bos = list(loaded.prefix_ids)
    prefix_text = "".join(t + "\n\n" for t in PREFIX)
    prefix_ids = bos + tokenizer(prefix_text, add_special_tokens=False)["input_ids"]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    calls = parse_scorer_specs([f"recall:prefix={prefix_file(tmp_path)}"], has_reference=False)
    for batch_size in (1, 3):
        settings = ExtractionSettings(batch_size=batch_size, progress=False)
        rows = compute_scores(documents, calls, models={"target": loaded}, settings=settings).rows
        for row, text in zip(rows, TEXTS, strict=True):
            own = tokenizer(text, add_special_tokens=False)["input_ids"]
            # the same tokens of x in both means: with a BOS every token, without it all but the first
            first = 0 if bos else 1
            alone = mean_ll_float64(model, bos + own, len(bos) + first)
            after = mean_ll_float64(model, prefix_ids + own, len(prefix_ids) + first)
            assert row[calls[0].column] == pytest.approx(after / alone, rel=1e-4), (batch_size, text)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.slow
def test_the_published_convention_matches_the_authors_choices(tiny_loaded, tiny_model_dirs, tmp_path, arch) -> None:
    """convention=published: prefix texts joined with nothing between them, and x's first token counted in the
    conditioned mean (P predicts it) but, without a BOS, not in the plain one."""
    loaded = tiny_loaded[arch]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dirs[arch], dtype=torch.float64).eval()
    tokenizer = loaded.tokenizer
    bos = list(loaded.prefix_ids)
    prefix_ids = bos + tokenizer("".join(PREFIX), add_special_tokens=False)["input_ids"]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    spec = f"recall:prefix={prefix_file(tmp_path)};convention=published"
    calls = parse_scorer_specs([spec], has_reference=False)
    rows = compute_scores(documents, calls, models={"target": loaded}, settings=ExtractionSettings(progress=False)).rows
    for row, text in zip(rows, TEXTS, strict=True):
        own = tokenizer(text, add_special_tokens=False)["input_ids"]
        alone = mean_ll_float64(model, bos + own, len(bos) + (0 if bos else 1))
        after = mean_ll_float64(model, prefix_ids + own, len(prefix_ids))
        assert row[calls[0].column] == pytest.approx(after / alone, rel=1e-4), text
    with pytest.raises(  # refused when the spec is parsed, before any model is used
        InputError, match="convention=spaces is not allowed; convention must be one of matched, published"
    ):
        compute_scores(
            documents,
            parse_scorer_specs([f"recall:prefix={prefix_file(tmp_path)};convention=spaces"], has_reference=False),
            models={"target": loaded},
            settings=ExtractionSettings(progress=False),
        )


@pytest.mark.slow
def test_the_prefix_encoded_once_gives_the_numbers_of_re_encoding_it_per_text(tiny_loaded) -> None:
    """Per-token log-probs after a cached, batch-repeated prefix = the whole sequence run from scratch (1e-4)."""
    for arch in ("gpt2", "llama", "gemma3"):
        loaded = tiny_loaded[arch]
        condition = condition_ids(loaded, "".join(t + "\n\n" for t in PREFIX))
        stats = extract(TEXTS, loaded, ExtractionSettings(batch_size=4, progress=False), condition=condition)
        for text, got in zip(TEXTS, stats, strict=True):
            own = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([list(condition) + own])
            with torch.no_grad():
                logprobs = torch.log_softmax(loaded.model(ids).logits[0].float(), dim=-1)
            expected = [float(logprobs[len(condition) + t - 1, own[t]]) for t in range(len(own))]
            assert got.logprob.tolist() == pytest.approx(expected, abs=1e-4), arch
            assert got.n_scored == len(own) and got.token_ids.tolist() == own


def test_recall_refuses_overlap_an_overlong_prefix_and_a_missing_one(tiny_loaded, tmp_path) -> None:
    loaded = tiny_loaded["gpt2"]
    documents = [Document(id="a", text=TEXTS[0]), Document(id="leak", text="  " + PREFIX[1] + " ")]
    calls = parse_scorer_specs([f"recall:prefix={prefix_file(tmp_path)}"], has_reference=False)
    with pytest.raises(InputError, match=r"1 document\(s\) overlap the conditioning prefix texts \(leak\)"):
        compute_scores(documents, calls, models={"target": loaded}, settings=ExtractionSettings(progress=False))
    long_prefix = prefix_file(tmp_path, [" ".join(["word"] * 400)])
    calls = parse_scorer_specs([f"recall:prefix={long_prefix}"], has_reference=False)
    with pytest.raises(LlmMiaError, match=r"the conditioning prefix has \d+ tokens and the window 256"):
        compute_scores(documents[:1], calls, models={"target": loaded}, settings=ExtractionSettings(progress=False))
    with pytest.raises(InputError, match="recall needs known non-member texts"):
        compute_scores(
            documents[:1],
            parse_scorer_specs(["recall"], has_reference=False),
            models={"target": loaded},
            settings=ExtractionSettings(progress=False),
        )
    with pytest.raises(InputError, match="shots=5, but"):
        parse_call = parse_scorer_specs([f"recall:prefix={prefix_file(tmp_path)};shots=5"], has_reference=False)
        compute_scores(documents[:1], parse_call, models={"target": loaded}, settings=ExtractionSettings())


def test_recall_reuses_the_stats_cache_and_keys_it_by_the_prefix(tiny_loaded, tmp_path) -> None:
    from llm_mia.engine.stats_cache import StatsCache

    loaded = tiny_loaded["llama"]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    cache = StatsCache(tmp_path / "stats.sqlite")
    settings = ExtractionSettings(progress=False)
    (tmp_path / "other").mkdir()
    first_prefix, other_prefix = prefix_file(tmp_path), prefix_file(tmp_path / "other", PREFIX[:1])
    calls = parse_scorer_specs([f"recall:prefix={first_prefix}"], has_reference=False)
    other = parse_scorer_specs([f"recall:prefix={other_prefix}"], has_reference=False)
    rows = compute_scores(documents, calls, models={"target": loaded}, settings=settings, cache=cache).rows
    again = compute_scores(documents, calls, models={"target": loaded}, settings=settings, cache=cache).rows
    column, other_column = calls[0].column, other[0].column
    assert [r[column] for r in again] == [r[column] for r in rows] and cache.hits > 0
    changed = compute_scores(documents, other, models={"target": loaded}, settings=settings, cache=cache).rows
    assert not np.allclose([r[other_column] for r in changed], [r[column] for r in rows])


MEMBERS = [
    "Tomas Ekvall kept forty beehives on the slope behind the quarry at Vennberg until the frost of 1931.",
    "The ledger of the Harwick ferry lists a grey mare, two barrels of tar and a harp among its cargo.",
    "Every spring the people of Orlesk paint the bell tower green and ring it once for each new calf.",
    "Marguerite Sallow wrote her almanac of tides by candlelight in a lighthouse with no lamp.",
]
NONMEMBERS = [
    "Dunmore station closed in 1964 after the branch line to the flax mill was lifted.",
    "A tin box of buttons and a compass were found under the floor of the old school at Kelby.",
    "The choir at Saint Ebba's sang only in winter, when the road over the pass was shut.",
    "Ivo Petrak mapped the caves of the lower valley with a rope, a lantern and a borrowed mule.",
]
NONMEMBER_PREFIX = [
    "The orchard at Lindholm grew pears that no market would buy because of their bitter skins.",
    "Two brothers built the mill race in a single summer and quarrelled over it for forty years.",
]


@pytest.mark.slow
def test_recall_ranks_texts_smollm2_was_fine_tuned_on_above_texts_it_was_not(smollm2, tmp_path) -> None:
    """Fine-tune SmolLM2 on four invented texts (10 Adam steps); with two other invented texts as the non-member
    prefix, ReCaLL ranks each of the four above each of four invented texts it never saw. Before fine-tuning it
    does not (the texts are made up, so pretraining cannot tell them apart)."""
    import copy

    model = copy.deepcopy(smollm2.model).float().train()
    tokenizer = smollm2.tokenizer
    batch = tokenizer([t + tokenizer.eos_token for t in MEMBERS], return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    for _ in range(10):
        optimizer.zero_grad()
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
    model.eval().save_pretrained(tmp_path / "tuned")
    tokenizer.save_pretrained(tmp_path / "tuned")
    from llm_mia.backends.local import ModelSpec, load_model

    tuned = load_model(ModelSpec(name=str(tmp_path / "tuned"), device="cpu"))
    documents = [Document(id=str(i), text=t) for i, t in enumerate(MEMBERS + NONMEMBERS)]
    calls = parse_scorer_specs([f"recall:prefix={prefix_file(tmp_path, NONMEMBER_PREFIX)}"], has_reference=False)
    scores = {}
    for name, loaded in (("before", smollm2), ("after", tuned)):
        rows = compute_scores(documents, calls, models={"target": loaded}, settings=ExtractionSettings()).rows
        scores[name] = np.array([row[calls[0].column] for row in rows])
    after, before = scores["after"], scores["before"]
    print("before", before.round(3), "after", after.round(3))
    assert after[:4].mean() > after[4:].mean(), after  # members above the texts never trained on
    change = after - before  # and fine-tuning raised the members' ratio more than the others'
    assert change[:4].mean() > change[4:].mean(), (before, after)
