"""Stats cache and resume: content addressing, atomic batches, damaged entries, out-of-memory back-off."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import llm_mia.engine.extract as extract_module
from llm_mia.cli import main
from llm_mia.engine.extract import STATUS_OUT_OF_MEMORY, extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.stats_cache import StatsCache

WORDS = "the river carried cold water past old mills while children counted boats and birds above".split()  # noqa: SIM905


def corpus(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(3, 25))) for _ in range(count)]


def assert_identical(a, b):
    assert a.status == b.status
    for field in ("token_ids", "logprob", "mu", "sigma", "rank", "top1_logprob"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.n_bytes, a.n_bytes_scored, a.n_tokens, a.n_windows) == (
        b.n_bytes,
        b.n_bytes_scored,
        b.n_tokens,
        b.n_windows,
    )


def test_cache_hits_return_identical_stats_and_skip_the_model(tiny_loaded, tmp_path, monkeypatch):
    loaded = tiny_loaded["llama"]
    texts = corpus(20)
    settings = ExtractionSettings(batch_size=4, progress=False)
    fresh = extract(texts, loaded, settings, cache=StatsCache(tmp_path / "c.sqlite"))
    cache = StatsCache(tmp_path / "c.sqlite")

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran although every document was cached")

    monkeypatch.setattr(extract_module, "_run_batch", no_model)
    again = extract(texts, loaded, settings, cache=cache)
    assert cache.hits == 20
    for a, b in zip(fresh, again, strict=True):
        assert_identical(a, b)


def test_cache_key_depends_on_settings_text_and_batch_layout(tiny_loaded, tmp_path):
    loaded = tiny_loaded["gpt2"]
    texts = corpus(6)
    cache = StatsCache(tmp_path / "c.sqlite")
    extract(texts, loaded, ExtractionSettings(batch_size=2, progress=False), cache=cache)
    assert cache.stored == 6
    extract(texts, loaded, ExtractionSettings(batch_size=2, progress=False), cache=cache)
    assert cache.hits == 6 and cache.stored == 6
    # another batch size puts documents in other batches, where their last bits may differ: never reused
    extract(texts, loaded, ExtractionSettings(batch_size=5, progress=False), cache=cache)
    assert cache.hits == 6 and cache.stored == 12
    extract(texts, loaded, ExtractionSettings(batch_size=2, window=16, progress=False), cache=cache)
    assert cache.stored == 18  # another window is another extraction
    extract([t + "!" for t in texts], loaded, ExtractionSettings(batch_size=2, progress=False), cache=cache)
    assert cache.stored == 24


def test_a_resumed_run_gives_the_same_bits_whatever_the_cache_held(tiny_loaded, tmp_path):
    loaded = tiny_loaded["llama"]
    texts = corpus(24, seed=5)
    settings = ExtractionSettings(batch_size=4, progress=False)
    uncached = extract(texts, loaded, settings)
    cache = StatsCache(tmp_path / "c.sqlite")
    extract(texts[::2], loaded, settings, cache=cache)  # half the documents, cached from other batches
    extract(texts[:7], loaded, ExtractionSettings(batch_size=3, progress=False), cache=cache)
    mixed = extract(texts, loaded, settings, cache=cache)
    for a, b in zip(uncached, mixed, strict=True):
        assert_identical(a, b)


def test_a_crash_mid_run_resumes_with_only_the_missing_documents(tiny_loaded, tmp_path, monkeypatch):
    loaded = tiny_loaded["llama"]
    texts = corpus(30, seed=1)
    settings = ExtractionSettings(batch_size=4, progress=False)
    uninterrupted = extract(texts, loaded, settings)
    real_run_batch = extract_module._run_batch
    calls = {"n": 0}

    def crash_after_three_batches(model, batch, context=None):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")
        return real_run_batch(model, batch, context)

    monkeypatch.setattr(extract_module, "_run_batch", crash_after_three_batches)
    with pytest.raises(KeyboardInterrupt):
        extract(texts, loaded, settings, cache=StatsCache(tmp_path / "c.sqlite"))
    monkeypatch.setattr(extract_module, "_run_batch", real_run_batch)
    cache = StatsCache(tmp_path / "c.sqlite")
    assert cache.info()["entries"] == 12  # three committed batches of four
    resumed = extract(texts, loaded, settings, cache=cache)
    assert cache.hits == 12 and cache.stored == 18
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert_identical(a, b)  # bit-identical: the remaining documents form the same batches


def test_damaged_entries_are_detected_and_recomputed(tiny_loaded, tmp_path):
    loaded = tiny_loaded["gpt2"]
    texts = corpus(5, seed=2)
    path = tmp_path / "c.sqlite"
    first = extract(texts, loaded, ExtractionSettings(progress=False), cache=StatsCache(path))
    with sqlite3.connect(path) as connection:  # flip bytes in one entry's arrays, truncate another's
        key, blob = connection.execute("SELECT key, arrays FROM stats LIMIT 1").fetchone()
        connection.execute("UPDATE stats SET arrays = ? WHERE key = ?", (blob[:-9] + b"XXXXXXXXX", key))
        key2 = connection.execute("SELECT key FROM stats WHERE key != ? LIMIT 1", (key,)).fetchone()[0]
        connection.execute("UPDATE stats SET arrays = substr(arrays, 1, 10) WHERE key = ?", (key2,))
    cache = StatsCache(path)
    checked, damaged = cache.verify()
    assert checked == 5 and sorted(damaged) == sorted([key, key2])
    again = extract(texts, loaded, ExtractionSettings(progress=False), cache=cache)
    # the damaged entries' batch (here all five documents) runs again, giving the very same bits; only the two
    # damaged entries are written again
    assert cache.rejected == 2 and cache.stored == 2
    for a, b in zip(first, again, strict=True):
        assert_identical(a, b)
    assert StatsCache(path).verify() == (5, [])


def test_an_unreadable_database_is_moved_aside(tiny_loaded, tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = StatsCache(path)
    assert cache.info()["entries"] == 0
    assert list(tmp_path.glob("c.sqlite.corrupt-*"))
    assert extract(["the river"], tiny_loaded["gpt2"], ExtractionSettings(progress=False), cache=cache)[0].ok


def test_out_of_memory_halves_the_batch_and_reports_what_never_fits(tiny_loaded, monkeypatch):
    loaded = tiny_loaded["llama"]
    texts = [*corpus(9, seed=3), "the river " * 70]
    settings = ExtractionSettings(batch_size=8, progress=False)
    expected = extract(texts, loaded, settings)
    real_run_batch = extract_module._run_batch
    sizes = []

    def small_memory(model, batch, context=None):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        if any(len(s.input_ids) > 150 for s in batch):
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory (simulated)")
        return real_run_batch(model, batch, context)

    monkeypatch.setattr(extract_module, "_run_batch", small_memory)
    got = extract(texts, loaded, settings)
    assert max(s for s in sizes[1:]) <= 8 and 1 in sizes
    assert got[-1].status == STATUS_OUT_OF_MEMORY and got[-1].n_scored == 0
    for a, b in zip(expected[:-1], got[:-1], strict=True):
        np.testing.assert_allclose(a.logprob, b.logprob, atol=1e-5)
    with pytest.raises(RuntimeError, match="unrelated"):
        unrelated = lambda m, b, c=None: (_ for _ in ()).throw(RuntimeError("unrelated"))  # noqa: E731
        monkeypatch.setattr(extract_module, "_run_batch", unrelated)
        extract(texts, loaded, settings)


def test_cache_command_info_verify_clear(tiny_model_dirs, tmp_path, capsys):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "The River carried cold water"}\n{"text": "Old Mills"}\n')
    model, cache_dir = str(tiny_model_dirs["gpt2"]), str(tmp_path / "cache")
    score = ["score", "--model", model, "--input", str(path), "--cache-dir", cache_dir, "--no-progress"]
    assert main([*score, "--output", str(tmp_path / "a.jsonl")]) == 0
    assert main(["cache", "info", "--cache-dir", cache_dir]) == 0
    assert "entries: 4" in capsys.readouterr().out  # two documents x (original, lowercased) texts
    assert main(["cache", "verify", "--cache-dir", cache_dir]) == 0
    assert "4 entries checked, 0 damaged" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", cache_dir]) == 0
    assert "removed 4" in capsys.readouterr().out


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_result(tiny_model_dirs, tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(f'{{"id": "d{i}", "text": "{t}"}}\n' for i, t in enumerate(corpus(1200, seed=4))))
    model = str(tiny_model_dirs["gpt2"])
    common = ["score", "--model", model, "--input", str(texts), "--scorers", "loss", "min_k", "--batch-size", "2"]
    assert main([*common, "--no-cache", "--no-progress", "--output", str(tmp_path / "whole.jsonl")]) == 0
    cache_dir = tmp_path / "cache"
    command = [sys.executable, "-m", "llm_mia", *common, "--cache-dir", str(cache_dir), "--no-progress"]
    process = subprocess.Popen([*command, "--output", str(tmp_path / "killed.jsonl")], env=os.environ.copy())
    database = cache_dir / "tokenstats.sqlite"
    deadline = time.time() + 120
    entries = 0
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
        if database.exists():
            try:
                with sqlite3.connect(database, timeout=1) as connection:
                    entries = connection.execute("SELECT count(*) FROM stats").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if entries >= 100:
                break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 100 <= entries < 1200, "the run should have been killed part-way"
    assert not (tmp_path / "killed.jsonl").exists()
    assert (
        main([*common, "--cache-dir", str(cache_dir), "--no-progress", "--output", str(tmp_path / "resumed.jsonl")])
        == 0
    )
    import json

    record = json.loads((tmp_path / "resumed.jsonl.run.json").read_text())
    assert record["execution"]["cache"]["hits"] >= 100
    assert record["execution"]["cache"]["hits"] + record["execution"]["cache"]["stored"] == 1200
    assert (tmp_path / "resumed.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()
