"""SaMIA: the split, ROUGE-1, seeding that ignores neighbours, and the signal on the packaged model."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from llm_mia.backends.loading import ModelSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document, read_documents
from llm_mia.methods.samia import rouge1_recall, samia_scores, split_text
from llm_mia.workflows.samia import STATUS_TOO_SHORT, SamiaSettings, run_samia

SAMPLE = Path(__file__).parents[1] / "llm_mia" / "data" / "sample.jsonl"


def test_rouge1_recall_clips_counts_and_divides_by_the_reference() -> None:
    assert rouge1_recall(["a", "a", "a", "b"], ["a", "b", "c", "d"]) == 0.5  # "a" counted once, as in the suffix
    assert rouge1_recall(["x"], []) == 0.0 and rouge1_recall([], ["x"]) == 0.0
    assert split_text("a b c", 0.5) == ("a", ["b", "c"])  # floor(1.5) = 1 prefix word, as the reference code
    recall, weighted = samia_scores(["b c", "z"], ["b", "c"])
    assert recall == 0.5 and weighted == pytest.approx(len(zlib.compress(b"b c")) / 2)


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(LlmMiaError, match="prefix_ratio"):
        SamiaSettings(prefix_ratio=1.0)
    with pytest.raises(LlmMiaError, match="samples"):
        SamiaSettings(samples=0)


def test_a_texts_samples_do_not_depend_on_the_other_texts(tiny_model_dirs, tmp_path: Path) -> None:
    settings = SamiaSettings(models=ModelSettings(model=str(tiny_model_dirs["llama"]), device="cpu"), samples=3)
    a = Document(id="a", text="the quick brown fox jumps over the lazy dog")
    b = Document(id="b", text="a stitch in time saves nine, as the saying goes")
    short = Document(id="short", text="word")
    both = run_samia([a, b, short], settings)
    alone = run_samia([b], settings)
    assert both.continuations[1] == alone.continuations[0] and both.rows[1]["samia"] == alone.rows[0]["samia"]
    assert both.rows[2]["status"] == STATUS_TOO_SHORT and both.rows[2]["samia"] is None
    assert len(both.continuations[0]["continuations"]) == 3
    other_seed = run_samia([b], SamiaSettings(models=settings.models, samples=3, seed=1))
    assert other_seed.continuations[0] != alone.continuations[0]
    _, _, samples = both.write(tmp_path / "samia.jsonl")
    assert json.loads(samples.read_text().splitlines()[0])["prefix"] == "the quick brown fox"


@pytest.mark.slow
def test_famous_texts_are_continued_more_faithfully_than_texts_written_in_2026() -> None:
    """The packaged SmolLM2 has read the famous passages in pretraining, and cannot have read the 2026 ones."""
    documents = read_documents(SAMPLE)
    famous = [d for d in documents if d.group == "famous public-domain text"][:4]
    fresh = [d for d in documents if d.group != "famous public-domain text"][:4]
    rows = run_samia([*famous, *fresh], SamiaSettings(models=ModelSettings(device="cpu"), samples=10)).rows
    scores = [row["samia"] for row in rows]
    assert all(row["status"] == "ok" for row in rows)
    assert sum(scores[:4]) / 4 > sum(scores[4:]) / 4 + 0.05
