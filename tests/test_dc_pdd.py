"""DC-PDD against a slow implementation written from the paper (float64, one text at a time, a Counter over the
corpus), its bad input, and its direction on the real SmolLM2."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs

CORPUS = [
    "The river ran past the old mill and under the stone bridge.",
    "Bridges of stone were common in the valley towns.",
    "A mill needs water, and the river gave it.",
]
TEXTS = ["The old bridge was made of stone.", "Water ran under the mill all year.", "Zebras ate quietly."]


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "cache"))


def corpus_file(tmp_path: Path, texts=CORPUS) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def slow_dc_pdd(model_dir: Path, tokenizer, text: str, corpus: list[str], a: float) -> float:
    """From the paper: probabilities from a float64 copy of the model, the text alone; frequencies by Counter."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
    counts = Counter(t for line in corpus for t in tokenizer(line, add_special_tokens=False)["input_ids"])
    total, vocabulary = sum(counts.values()), len(tokenizer)
    with_special = tokenizer(text)["input_ids"]
    content = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = len(with_special) > len(content)
    with torch.no_grad():
        logits = model(torch.tensor([with_special])).logits[0]
    logprobs = torch.log_softmax(logits, dim=-1)
    seen, terms = set(), []
    for position in range(1, len(with_special)):  # every token that something predicts
        token = with_special[position]
        if token in seen:
            continue
        seen.add(token)
        p = math.exp(float(logprobs[position - 1, token]))
        f = (counts[token] + 1) / (total + vocabulary)
        terms.append(min(p * math.log(1 / f), a))
    assert bos or len(content) == len(with_special)
    return sum(terms) / len(terms)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_dc_pdd_matches_a_slow_implementation_from_the_paper(tiny_loaded, tiny_model_dirs, tmp_path, arch) -> None:
    loaded = tiny_loaded[arch]
    corpus = corpus_file(tmp_path)
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    for a in (0.01, 1.0):  # a = 1 leaves (almost) every term unclipped
        calls = parse_scorer_specs([f"dc_pdd:a={a};corpus={corpus}"], has_reference=False)
        quiet = ExtractionSettings(progress=False)
        scored = compute_scores(documents, calls, models={"target": loaded}, settings=quiet)
        rows = scored.rows
        column = calls[0].column
        for row, text in zip(rows, TEXTS, strict=True):
            expected = slow_dc_pdd(tiny_model_dirs[arch], loaded.tokenizer, text, CORPUS, a)
            assert row[column] == pytest.approx(expected, rel=1e-5, abs=1e-9)
        # the run record names the corpus table: tokenizer, corpus hash, sizes
        prepared = scored.scorers[0]["prepared"]
        assert prepared["tokenizer_id"] == loaded.tokenizer_id and prepared["corpus_texts"] == 3


def test_dc_pdd_refuses_an_empty_corpus_a_foreign_table_and_an_api_model(tiny_loaded, tmp_path) -> None:
    from llm_mia.scoring.token_frequencies import build_table, table_for

    gpt2, llama = tiny_loaded["gpt2"], tiny_loaded["llama"]
    with pytest.raises(InputError, match="holds no tokens"):
        build_table(gpt2.tokenizer, gpt2.tokenizer_id, ["", ""], "empty.jsonl")
    # a table built with one tokenizer is refused for a model with another
    assert gpt2.tokenizer_id != llama.tokenizer_id
    table_for(gpt2.tokenizer, gpt2.tokenizer_id, str(corpus_file(tmp_path)))
    (saved,) = (Path(tmp_path) / "cache" / "token-frequencies").glob("*.npz")
    with pytest.raises(InputError, match="built with tokenizer"):
        table_for(llama.tokenizer, llama.tokenizer_id, str(saved))
    # a model behind an API returns no token ids: refused before any request, by name
    with pytest.raises(LlmMiaError, match="dc_pdd needs the per-token token_ids"):
        parse_scorer_specs(["dc_pdd"], has_reference=False, arrays=("logprob",), provider="this endpoint")
    # not in the default set: it needs a corpus
    assert "dc_pdd" not in {c.scorer.name for c in parse_scorer_specs(None, has_reference=False)}


@pytest.mark.slow
def test_dc_pdd_scores_natural_text_above_its_shuffled_words_on_smollm2(smollm2) -> None:
    """A text the model finds natural has likely tokens; the same words shuffled do not. DC-PDD (Wikipedia
    frequencies, the default corpus) must rank each natural text above its shuffle."""
    texts = [
        "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.",
        "Water boils at one hundred degrees Celsius at sea level.",
        "The cat sat on the mat and looked out of the window at the rain.",
    ]
    rng = np.random.default_rng(0)
    shuffled = [" ".join(rng.permutation(t.split())) for t in texts]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(texts + shuffled)]
    calls = parse_scorer_specs(["dc_pdd"], has_reference=False)
    rows = compute_scores(documents, calls, models={"target": smollm2}, settings=ExtractionSettings()).rows
    scores = [row["dc_pdd"] for row in rows]
    assert all(scores[i] > scores[i + 3] for i in range(3)), scores


def test_a_missing_corpus_is_refused_before_any_text_is_scored(tiny_loaded, tmp_path, monkeypatch) -> None:
    """The frequency table is built before extraction: a corpus that is not there fails at once, not after all the
    scoring (a new user waited 152 s for this error)."""
    import llm_mia.scoring.pipeline as scoring_module

    def no_scoring(*args, **kwargs):
        raise AssertionError("texts were scored before the corpus was checked")

    monkeypatch.setattr(scoring_module, "extract_views", no_scoring)
    calls = parse_scorer_specs([f"dc_pdd:corpus={tmp_path / 'missing.jsonl'}"], has_reference=False)
    with pytest.raises(LlmMiaError, match=r"missing\.jsonl"):
        compute_scores(
            [Document(id="a", text="Some text to score.")],
            calls,
            models={"target": tiny_loaded["gpt2"]},
            settings=ExtractionSettings(progress=False),
        )
