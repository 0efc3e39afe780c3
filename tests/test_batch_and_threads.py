"""--batch-size auto (a token budget found once per model, device and window, remembered, and the scores of a
fixed batch) and --threads auto (the cores other work leaves free, measured now)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from llm_mia.engine.batch_size import measure_tokens, memory_file
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.threads import auto_threads, available_cores, busy_cores, parse_threads
from llm_mia.errors import LlmMiaError

TEXTS = [("the cat sat on the mat " * (1 + i % 9)) + f"number {i}" for i in range(40)]


@pytest.mark.slow
def test_auto_batches_hold_many_segments_are_remembered_and_score_as_a_fixed_batch(
    tiny_loaded, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path))
    loaded = tiny_loaded["llama"]
    calls = []

    def heard(event, segments):
        if event == "model call":
            calls.append(len(segments))

    auto = extract(TEXTS, loaded, ExtractionSettings(batch_size="auto", progress=False), observer=heard)
    remembered = json.loads(memory_file().read_text())
    (entry,) = remembered.values()
    assert entry["tokens"] >= loaded.context_length and "estimated" in entry["how"]
    assert max(calls) > 1 and len(calls) < len(TEXTS)  # more than one segment per forward pass
    one = extract(TEXTS, loaded, ExtractionSettings(batch_size=1, progress=False))
    for a, b in zip(auto, one, strict=True):
        assert np.abs(a.logprob - b.logprob).max() <= 1e-5 and np.abs(a.mu - b.mu).max() <= 1e-5
    again = extract(TEXTS, loaded, ExtractionSettings(batch_size="auto", progress=False))  # the remembered budget
    assert all(np.array_equal(a.logprob, b.logprob) for a, b in zip(auto, again, strict=True))


def test_measuring_doubles_until_memory_runs_out() -> None:
    ran = []

    def run(segments: int) -> None:
        if segments >= 8:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        ran.append(segments)

    assert measure_tokens(run, 512, lambda e: "out of memory" in str(e)) == 4 * 512
    assert ran == [1, 2, 4]
    with pytest.raises(RuntimeError, match="shape"):  # anything but out-of-memory is not swallowed
        measure_tokens(lambda n: (_ for _ in ()).throw(RuntimeError("shape mismatch")), 512, lambda e: False)


def test_batch_size_must_be_a_count_or_auto() -> None:
    with pytest.raises(LlmMiaError, match="integer >= 1 or 'auto'"):
        ExtractionSettings(batch_size="big")
    with pytest.raises(LlmMiaError, match="at least 1"):
        parse_threads("0")
    with pytest.raises(LlmMiaError, match="positive integer or 'auto'"):
        parse_threads("many")


def test_auto_threads_leave_the_busy_cores_to_the_work_that_keeps_them_busy() -> None:
    """With one spinning process per core, auto takes one thread; every core is counted as busy."""
    cores = available_cores()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(1.0)
        busy = busy_cores()
        assert busy >= 0.7 * cores, busy
        assert auto_threads(busy=busy) <= max(1, round(0.3 * cores))
    finally:
        for spinner in spinners:
            spinner.kill()
    assert auto_threads(cores=cores, busy=0.0) == cores


@pytest.mark.slow
def test_a_documents_bits_depend_only_on_its_block(tiny_model_dirs) -> None:
    """Batches are planned within blocks of documents: a block scored alone gives the bits it gets among all."""
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.io.documents import Document
    from llm_mia.scoring.settings import ScoringSettings
    from llm_mia.workflows.score import score_documents

    documents = [Document(id=f"d{i}", text=text) for i, text in enumerate(TEXTS)]
    settings = ScoringSettings(
        models=ModelSettings(model=str(tiny_model_dirs["llama"]), device="cpu"),
        scorers=("loss", "min_k"),
        extraction=ExtractionSettings(batch_size=3, block_documents=16, progress=False),
        cache=False,
    )
    everything = score_documents(documents, settings).rows
    assert score_documents(documents[16:32], settings).rows == everything[16:32]
    assert score_documents(documents[32:], settings).rows == everything[32:]
