"""The neighbourhood attack against a slow implementation (float64, one text at a time), both neighbour
generators (word swaps; a masked language model with the embedding-dropout trick), and its direction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, BertConfig, BertForMaskedLM

from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.documents import Document
from llm_mia.scoring.neighbours import MaskedModelNeighbours, word_swap_neighbours
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs

TEXTS = ["The old bridge was made of stone and crossed the river twice.", "Water ran under the mill all year."]
QUIET = ExtractionSettings(progress=False)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "cache"))


def nll_float64(model, loaded, text: str) -> float:
    ids = list(loaded.prefix_ids) + loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return -sum(float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))) / (len(ids) - 1)


def test_word_swaps_are_seeded_distinct_and_one_swap_away() -> None:
    text = TEXTS[0]
    first, again = word_swap_neighbours(text, 5, seed=3), word_swap_neighbours(text, 5, seed=3)
    assert first == again and len(set(first)) == 5 and text not in first
    assert word_swap_neighbours(text, 5, seed=4) != first
    words = text.split()
    for neighbour in first:
        changed = [i for i, (a, b) in enumerate(zip(words, neighbour.split(), strict=True)) if a != b]
        assert len(changed) == 2 and changed[1] == changed[0] + 1  # one adjacent pair swapped
    assert word_swap_neighbours("single", 5) == [] and len(word_swap_neighbours("a b c", 25)) == 2


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.slow
def test_neighbourhood_matches_a_slow_implementation(tiny_loaded, tiny_model_dirs, arch) -> None:
    loaded = tiny_loaded[arch]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dirs[arch], dtype=torch.float64).eval()
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)] + [Document(id="one", text="Word")]
    calls = parse_scorer_specs(["neighbourhood:n=4"], has_reference=False)
    scored = compute_scores(documents, calls, models={"target": loaded}, settings=QUIET)
    rows = scored.rows
    for row, text in zip(rows[:2], TEXTS, strict=True):
        neighbours = word_swap_neighbours(text, 4, seed=0)
        expected = sum(nll_float64(model, loaded, nb) for nb in neighbours) / 4 - nll_float64(model, loaded, text)
        assert row[calls[0].column] == pytest.approx(expected, abs=1e-4)
    assert rows[2][calls[0].column] is None and "no neighbour" in rows[2]["status"]
    # the neighbours are kept, named in the run record
    kept = Path(scored.scorers[0]["prepared"]["neighbours_file"])
    lines = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["0", "1", "one"] and lines[0]["neighbours"] == word_swap_neighbours(
        TEXTS[0], 4
    )


@pytest.mark.slow
def test_masked_model_neighbours_replace_one_token_each(tiny_model_dirs, tiny_loaded, tmp_path) -> None:
    """The published generator on a small random masked model (the mechanics, not the quality)."""
    tokenizer = tiny_loaded["gpt2"].tokenizer
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(tmp_path / "mlm")
    tokenizer.save_pretrained(tmp_path / "mlm")
    generator = MaskedModelNeighbours(str(tmp_path / "mlm"))
    text = TEXTS[1]
    neighbours = generator(text, 6, seed=1)
    assert len(neighbours) == 6 and len(set(neighbours)) == 6 and text not in neighbours
    assert neighbours == generator(text, 6, seed=1)  # seeded dropout
    original = tokenizer(text, add_special_tokens=False)["input_ids"]
    for neighbour in neighbours:
        ids = tokenizer(neighbour, add_special_tokens=False)["input_ids"]
        if len(ids) == len(original):  # one token replaced (a decode may re-merge bytes differently)
            assert sum(a != b for a, b in zip(ids, original, strict=True)) >= 1
    documents = [Document(id="0", text=text)]
    calls = parse_scorer_specs([f"neighbourhood:n=3;generator={tmp_path / 'mlm'}"], has_reference=False)
    rows = compute_scores(documents, calls, models={"target": tiny_loaded["gpt2"]}, settings=QUIET).rows
    assert rows[0]["status"] == "ok" and rows[0][calls[0].column] is not None


@pytest.mark.slow
def test_natural_text_sits_in_a_dip_on_smollm2(smollm2) -> None:
    """Swapping adjacent words of a fluent sentence makes it less likely to a real model: positive scores."""
    texts = [
        "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.",
        "Water boils at one hundred degrees Celsius at sea level.",
    ]
    calls = parse_scorer_specs(["neighbourhood:n=8"], has_reference=False)
    documents = [Document(id=str(i), text=t) for i, t in enumerate(texts)]
    rows = compute_scores(documents, calls, models={"target": smollm2}, settings=QUIET).rows
    assert all(row[calls[0].column] > 0.2 for row in rows), rows
