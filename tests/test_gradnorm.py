"""GradNorm against a slow implementation (float64 copy of the model, one text, torch.autograd), its direction on
a model trained on one text and not another, and its refusal for a model behind an API."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.pipeline import compute_scores
from llm_mia.scoring.scorers import parse_scorer_specs

TEXTS = ["The old bridge was made of stone and crossed the river twice.", "Water ran under the mill all year."]
QUIET = ExtractionSettings(progress=False)


def slow_norms(model_dir, loaded, text: str) -> tuple[float, float, float]:
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64)
    ids = list(loaded.prefix_ids) + loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    logits = model(torch.tensor([ids])).logits[0]
    logprobs = torch.log_softmax(logits, dim=-1)
    loss = -torch.stack([logprobs[t - 1, ids[t]] for t in range(1, len(ids))]).mean()
    grads = torch.autograd.grad(loss, [p for p in model.parameters()], allow_unused=True)
    flat = torch.cat([g.reshape(-1) for g in grads if g is not None])
    return float(flat.abs().sum()), float(flat.norm()), float(flat.abs().max())


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_gradnorm_matches_a_slow_implementation(tiny_loaded, tiny_model_dirs, arch) -> None:
    loaded = tiny_loaded[arch]
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    calls = parse_scorer_specs(["gradnorm:p=1,2,inf"], has_reference=False)
    rows = compute_scores(documents, calls, models={"target": loaded}, settings=QUIET).rows
    for row, text in zip(rows, TEXTS, strict=True):
        expected = slow_norms(tiny_model_dirs[arch], loaded, text)
        got = [-row[call.column] for call in calls]
        assert got == pytest.approx(list(expected), rel=1e-3), arch
    assert not any(p.requires_grad for p in loaded.model.parameters()) or all(
        p.grad is None for p in loaded.model.parameters()
    )


@pytest.mark.train
def test_a_text_the_model_was_trained_on_has_the_smaller_gradient(tiny_model_dirs, tmp_path) -> None:
    """Train the tiny Llama on the first text only (60 Adam steps); GradNorm ranks it above the second text."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dirs["llama"], dtype=torch.float32)
    loaded = load_model(ModelSpec(name=str(tiny_model_dirs["llama"]), device="cpu"))
    ids = torch.tensor([list(loaded.prefix_ids) + loaded.tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"]])
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
    model.save_pretrained(tmp_path / "trained")
    loaded.tokenizer.save_pretrained(tmp_path / "trained")
    trained = load_model(ModelSpec(name=str(tmp_path / "trained"), device="cpu"))
    documents = [Document(id=str(i), text=t) for i, t in enumerate(TEXTS)]
    calls = parse_scorer_specs(["gradnorm", "loss"], has_reference=False)
    before = compute_scores(documents, calls, models={"target": loaded}, settings=QUIET).rows
    after = compute_scores(documents, calls, models={"target": trained}, settings=QUIET).rows
    assert after[0]["gradnorm"] > after[1]["gradnorm"]  # the trained-on text: the smaller gradient
    assert after[0]["gradnorm"] > before[0]["gradnorm"]  # and smaller than before training
    assert math.isfinite(after[1]["gradnorm"])


def test_gradnorm_is_refused_for_a_model_behind_an_api() -> None:
    from llm_mia.backends.remote.capabilities import Capabilities
    from llm_mia.backends.remote.client import ApiClient, ApiSettings
    from llm_mia.backends.remote.model import RemoteModel

    settings = ApiSettings(base_url="http://127.0.0.1:9/v1")
    remote = RemoteModel(ModelSpec(name="api:m"), settings, ApiClient(settings), Capabilities(mode="echo"))
    calls = parse_scorer_specs(["gradnorm"], has_reference=False)
    with pytest.raises(LlmMiaError, match="gradnorm needs the model's weights"):
        compute_scores([Document(id="a", text="x y z")], calls, models={"target": remote}, settings=QUIET)
