"""Offline model resolution: local directories, GGUF conversion, missing paths and uncached ids."""

from __future__ import annotations

import pytest

from llm_mia.backends.local import ModelSpec, load_model, resolve_model_directory
from llm_mia.errors import LlmMiaError, ModelNotFoundError


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "opt", "llama", "gemma3"])
def test_every_architecture_loads_from_its_directory(tiny_loaded, arch):
    loaded = tiny_loaded[arch]
    assert loaded.context_length == 256
    assert loaded.adds_bos == (arch in ("llama", "gemma3"))
    assert loaded.describe()["architecture"].endswith("ForCausalLM") or "LMHead" in loaded.describe()["architecture"]


def test_missing_paths_and_uncached_ids_fail_with_the_fix(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not an existing local directory"):
        resolve_model_directory(ModelSpec(str(tmp_path / "absent")))
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve_model_directory(ModelSpec("EleutherAI/pythia-70m-not-cached", revision="main"))
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_model_directory(ModelSpec(str(tmp_path / "empty-dir")))
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache"):
        resolve_model_directory(ModelSpec(str(tmp_path / "missing.gguf")))


def test_spec_validation():
    with pytest.raises(LlmMiaError, match="dtype 'float8'"):
        ModelSpec(dtype="float8")
    with pytest.raises(LlmMiaError, match="device"):
        ModelSpec(device="tpu")
    assert ModelSpec().trust_remote_code is False


def test_bfloat16_runs_with_float32_reductions(tiny_model_dirs):
    from llm_mia.engine.extract import extract
    from llm_mia.engine.extraction_settings import ExtractionSettings

    loaded = load_model(ModelSpec(str(tiny_model_dirs["llama"]), dtype="bfloat16", device="cpu"))
    (stats,) = extract(["the river carried cold water"], loaded, ExtractionSettings(progress=False))
    assert stats.ok and stats.logprob.dtype.name == "float32"


@pytest.mark.slow
def test_packaged_smollm2_converts_once_and_reloads_fast(smollm2):
    import time

    assert (smollm2.directory / "llm_mia_source.json").is_file()
    assert smollm2.adds_bos is False and smollm2.context_length == 8192
    start = time.perf_counter()
    directory = resolve_model_directory(ModelSpec("smollm2-135m"))
    assert directory == smollm2.directory
    assert time.perf_counter() - start < 5.0  # hashes the GGUF, does not convert again
