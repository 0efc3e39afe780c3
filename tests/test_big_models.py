"""Models larger than one device: --device-map auto with part of a model offloaded to disk scores as a plain
load does; a --max-memory too small for even offload is refused before any scoring."""

from __future__ import annotations

import numpy as np
import pytest

from llm_mia.backends.big_models import parse_max_memory, parse_size
from llm_mia.backends.local import ModelSpec, load_model
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError

TEXTS = ["the cat sat on the mat and then ran far away " * 12, "into green fields", "of old England, long ago"]


def test_part_of_a_model_offloaded_to_disk_scores_as_a_plain_load(tiny_model_dirs) -> None:
    path = str(tiny_model_dirs["llama"])
    plain = load_model(ModelSpec(name=path, device="cpu"))
    expected = extract(TEXTS, plain, ExtractionSettings(batch_size=2, progress=False))
    placements = []
    for kilobytes in range(60, 400, 10):  # the smallest CPU budget that still keeps some layers on the CPU
        big = load_model(ModelSpec(name=path, device="cpu", device_map="auto", max_memory=(("cpu", f"{kilobytes}KB"),)))
        placement = big.describe()["device_map"] or {}
        placements.append(placement)
        if "cpu" in placement and "disk" in placement:
            break
    else:
        pytest.fail(f"no budget split the model between CPU and disk: {placements}")
    found = extract(TEXTS, big, ExtractionSettings(batch_size=2, progress=False))
    for a, b in zip(expected, found, strict=True):
        assert np.array_equal(a.token_ids, b.token_ids)
        for name in ("logprob", "mu", "sigma", "top1_logprob"):
            assert np.abs(getattr(a, name) - getattr(b, name)).max() <= 1e-5


def test_a_budget_too_small_for_even_offload_is_refused_before_scoring(tiny_model_dirs, tmp_path, capsys) -> None:
    from llm_mia.cli import main

    output = tmp_path / "scores.jsonl"
    args = ["score", "--model", str(tiny_model_dirs["llama"]), "--device", "cpu", "--no-cache", "--output", str(output)]
    assert main([*args, "--device-map", "auto", "--max-memory", "cpu=1KB"]) != 0
    error = capsys.readouterr().err
    assert "largest block" in error and "raise its limit" in error and not output.exists()
    assert main([*args, "--max-memory", "cpu=1GiB"]) != 0
    assert "add --device-map auto" in capsys.readouterr().err


def test_memory_sizes_and_budgets_are_parsed_or_refused() -> None:
    assert parse_size("2 GiB") == 2 * 2**30 and parse_size("500MB") == 500 * 10**6
    assert parse_max_memory("0=10GiB,cuda:1=10GiB,cpu=1TB") == (("0", "10GiB"), ("cuda:1", "10GiB"), ("cpu", "1TB"))
    with pytest.raises(LlmMiaError, match="a number and a unit"):
        parse_size("lots")
    with pytest.raises(LlmMiaError, match="device=size pairs"):
        parse_max_memory("gpu=10GiB")
