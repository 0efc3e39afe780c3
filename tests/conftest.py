"""Shared fixtures: tiny random models of each architecture (saved to disk and loaded through the
ordinary path-loading code) and, for slow tests, the packaged SmolLM2. Tests marked ``train``, ``browser`` or
``cluster`` are marked ``slow`` too, so ``pytest -m "not slow"`` leaves them out (markers: pyproject.toml).

``tests/`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml, so helpers import by name
(``from tiny_models import make_tiny_model``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import ARCHITECTURES, make_tiny_model

from llm_mia.backends.local import ModelSpec, load_model

SLOW_KINDS = ("train", "browser", "cluster")  # markers that always mean minutes, not seconds


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked train, browser or cluster is slow: mark it so, whatever else it says."""
    for item in items:
        if item.get_closest_marker("slow") is None and any(item.get_closest_marker(k) for k in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def private_stats_cache(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or write the user's own stats cache (converted models are still shared)."""
    import llm_mia.engine.stats_cache

    path = tmp_path_factory.mktemp("stats-cache") / "tokenstats.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llm_mia.engine.stats_cache, "default_cache_path", lambda: path)
        yield path


@pytest.fixture(scope="session", autouse=True)
def private_failure_logs(tmp_path_factory: pytest.TempPathFactory):
    """Logs of failed commands go to a directory of the test session's, never the user's cache."""
    import llm_mia.cli.failures

    path = tmp_path_factory.mktemp("failure-logs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llm_mia.cli.failures, "log_directory", lambda: path)
        yield path


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved tiny model directory per architecture (llama and gemma3 add BOS; the others do not)."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: make_tiny_model(root / arch, arch, max_positions=256) for arch in ARCHITECTURES}


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dirs: dict[str, Path]):
    """Loaded tiny models by architecture, on CPU in float32."""
    return {arch: load_model(ModelSpec(name=str(path), device="cpu")) for arch, path in tiny_model_dirs.items()}


@pytest.fixture(scope="session")
def smollm2():
    """The packaged SmolLM2-135M (converted from its GGUF once into the cache)."""
    return load_model(ModelSpec(name="smollm2-135m", device="cpu"))
