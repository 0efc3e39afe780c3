"""``--dtype mixed``: bfloat16 block products where the hardware multiplies bfloat16 natively, float32 elsewhere."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from tiny_models import ARCHITECTURES

import llm_mia.backends.precision as precision
from llm_mia.backends.loading import ModelSettings
from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.backends.precision import cpu_flags, dtype_in_effect, fast_bfloat16
from llm_mia.cli import main
from llm_mia.errors import LlmMiaError
from llm_mia.io.labelled_sets import load_wikimia
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.workflows.score import score_documents

WIKIMIA_32 = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikimia" / "32.jsonl"
TEXTS = [
    "the cat sat on the mat and looked at the door",
    "a dog ran across the field after the red ball",
    "rain fell over the quiet town all night long",
    "she wrote a letter to her brother in the city",
]
SCORERS = ("loss", "zlib", "min_k:k=0.2", "min_k_plus_plus:k=0.2")


@pytest.fixture
def cpu_with(monkeypatch, tmp_path):
    """Make the CPU report the given flags (a /proc/cpuinfo of its own), whatever this machine has."""

    def pretend(*flags: str) -> None:
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {' '.join(flags)}\n", encoding="utf-8")
        monkeypatch.setattr(precision, "CPU_FLAGS_FILE", path)

    return pretend


def test_fast_bfloat16_needs_amx_or_avx512_bf16_on_a_cpu():
    assert cpu_flags("processor : 0\nflags : fpu avx2 avx512_bf16\n") == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags("Features : fp asimd bf16\n") == {"fp", "asimd", "bf16"}
    assert cpu_flags("nothing here\n") == frozenset()
    assert fast_bfloat16("cpu", frozenset({"avx512_bf16"})) == (True, "CPU with avx512_bf16")
    assert fast_bfloat16("cpu", frozenset({"amx_bf16", "avx512_bf16"})) == (True, "CPU with amx_bf16 and avx512_bf16")
    slow, why = fast_bfloat16("cpu", frozenset({"avx2", "avx512f", "bf16"}))
    assert not slow and "neither AMX nor AVX-512 BF16" in why
    assert fast_bfloat16("mps", frozenset({"avx512_bf16"}))[0] is False


def test_mixed_falls_back_to_float32_where_bfloat16_does_not_pay(caplog):
    with caplog.at_level(logging.WARNING, logger="llm_mia.backends.precision"):
        assert dtype_in_effect("mixed", "cpu", frozenset({"avx2"})) == "float32"
    assert "--dtype mixed: this CPU has neither AMX nor AVX-512 BF16" in caplog.text
    assert "running in float32" in caplog.text
    assert dtype_in_effect("mixed", "cpu", frozenset({"avx512_bf16"})) == "mixed"
    for dtype in ("float32", "bfloat16", "float16"):  # only mixed is decided by the hardware
        assert dtype_in_effect(dtype, "cpu", frozenset()) == dtype


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_mixed_puts_only_the_block_products_in_bfloat16(tiny_model_dirs, cpu_with, architecture):
    cpu_with("avx512_bf16")
    loaded = load_model(ModelSpec(str(tiny_model_dirs[architecture]), dtype="mixed", device="cpu"))
    assert loaded.spec.dtype == "mixed" and loaded.describe()["dtype"] == "mixed"
    head = loaded.model.get_output_embeddings()
    products = [m for m in loaded.model.modules() if m is not head and hasattr(m, "weight") and m.weight.ndim == 2]
    low = [m for m in products if m.weight.dtype == torch.bfloat16]
    assert low and head.weight.dtype == torch.float32
    assert loaded.model.get_input_embeddings().weight.dtype == torch.float32
    # everything in bfloat16 is a block's matrix product; norms, embeddings and the head stay float32
    assert all(type(m).__name__ in ("Linear", "Conv1D") for m in low)
    others = [p for m in loaded.model.modules() if m not in low for p in m.parameters(recurse=False)]
    assert others and all(p.dtype == torch.float32 for p in others)
    ids = torch.tensor([[1, 5, 9, 3]])
    hidden = loaded.model.base_model(input_ids=ids).last_hidden_state
    assert hidden.dtype == torch.float32 and torch.isfinite(hidden).all()  # the residual stream is float32


def test_without_fast_bfloat16_mixed_loads_and_scores_as_float32(tiny_model_dirs, cpu_with):
    cpu_with()  # no AMX, no AVX-512 BF16
    path = str(tiny_model_dirs["llama"])
    loaded = load_model(ModelSpec(path, dtype="mixed", device="cpu"))
    assert loaded.spec.dtype == "float32" and loaded.describe()["dtype"] == "float32"  # the record names float32
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    settings = lambda dtype: ScoringSettings(  # noqa: E731
        models=ModelSettings(model=path, dtype=dtype, device="cpu"), scorers=SCORERS, cache=False
    )
    documents = [load_wikimia(WIKIMIA_32)[i] for i in range(4)]
    mixed = score_documents(documents, settings("mixed")).rows
    full = score_documents(documents, settings("float32")).rows
    assert [r["loss"] for r in mixed] == [r["loss"] for r in full]  # bit for bit: it is float32


def test_mixed_with_a_spread_model_is_refused_before_loading():
    with pytest.raises(LlmMiaError, match="--dtype mixed runs on one device; with --device-map auto use --dtype"):
        ModelSpec("smollm2-135m", dtype="mixed", device_map="auto")


def test_the_commands_accept_mixed_and_its_precision_check(tiny_model_dirs, cpu_with, tmp_path, capsys):
    cpu_with("avx512_bf16")
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(f'{{"text": "{t}"}}\n' for t in TEXTS), encoding="utf-8")
    common = ["score", "--input", str(texts), "--model", str(tiny_model_dirs["llama"]), "--device", "cpu", "--no-cache"]
    common += ["--scorers", "loss", "min_k", "--threads", "1", "--no-progress"]
    assert main([*common, "--dtype", "mixed", "--precision-check", "3"]) == 0
    printed = capsys.readouterr().out
    assert "precision check: 3 of 4 document(s) (seeded sample, seed 0) scored in mixed and in float32" in printed


@pytest.mark.slow
def test_mixed_scores_real_text_closer_to_float32_than_bfloat16(cpu_with):
    """SmolLM2 on the first 16 WikiMIA-32 texts. The bounds are about twice the largest differences measured
    (benchmarks/precision_parts.py on 48 texts: mixed moved loss by at most 0.017, zlib 0.0001, Min-K% 0.069,
    Min-K%++ 0.134; on these 16 loss moved by 0.026): a per-text difference is a maximum over texts, and another
    machine's kernels round differently. A single text can move as much as under plain bfloat16 (on these 16 the
    largest loss difference is 0.026 against bfloat16's 0.023); on average over texts mixed moves less."""
    cpu_with("avx512_bf16")
    documents = load_wikimia(WIKIMIA_32)[:16]

    def scores(dtype: str) -> dict[str, np.ndarray]:
        settings = ScoringSettings(
            models=ModelSettings(model="smollm2-135m", dtype=dtype, device="cpu"), scorers=SCORERS, cache=False
        )
        rows = score_documents(documents, settings).rows
        return {c: np.array([row[c] for row in rows]) for c in ("loss", "zlib", "min_k", "min_k_plus_plus")}

    full, mixed, plain = scores("float32"), scores("mixed"), scores("bfloat16")
    bounds = {"loss": 0.05, "zlib": 0.0005, "min_k": 0.15, "min_k_plus_plus": 0.25}
    for column, bound in bounds.items():
        moved = np.max(np.abs(mixed[column] - full[column]))
        assert 0 < moved <= bound, (column, moved)
        assert spearmanr(mixed[column], full[column]).statistic > 0.99
    for column in ("loss", "min_k"):  # where plain bfloat16's rounded residual stream and logits weigh most
        assert np.mean(np.abs(mixed[column] - full[column])) < np.mean(np.abs(plain[column] - full[column]))
