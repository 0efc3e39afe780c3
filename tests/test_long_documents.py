"""One long document (a book given as one file): its finished windows survive a crash, a SIGKILL or Ctrl-C and a
rerun computes only the missing ones, with the bits of an uninterrupted run; the cost is said before the first
forward pass, and the progress bar moves window batch by window batch."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import llm_mia
import llm_mia.engine.extract as extract_module
import llm_mia.engine.stats_cache as cache_module
from llm_mia.cli import main
from llm_mia.engine.extract import extract
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.stats_cache import StatsCache

REAL_RUN_BATCH = extract_module._run_batch
WORDS = "the river carried cold water past old mills while children counted boats and birds above quiet fields".split()  # noqa: SIM905


def book(words: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=words))


def assert_identical(a, b):
    assert a.status == b.status
    for field in ("token_ids", "logprob", "mu", "sigma", "rank", "top1_logprob"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.n_bytes_scored, a.n_tokens, a.n_windows) == (b.n_bytes_scored, b.n_tokens, b.n_windows)


def counting(monkeypatch, *, crash_at: int | None = None) -> list[list[int]]:
    """Count forward passes (the window indexes of each); with ``crash_at``, raise KeyboardInterrupt on that call."""
    calls: list[list[int]] = []

    def run(model, batch, context=None):
        if crash_at is not None and len(calls) + 1 == crash_at:
            raise KeyboardInterrupt("killed")
        calls.append([segment.part for segment in batch])
        return REAL_RUN_BATCH(model, batch, context)

    monkeypatch.setattr(extract_module, "_run_batch", run)
    return calls


def windows_in(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM windows").fetchone()[0]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.slow
def test_a_crash_inside_one_document_resumes_at_its_finished_windows(tiny_loaded, tmp_path, monkeypatch, arch):
    loaded = tiny_loaded[arch]
    settings = ExtractionSettings(window=32, stride=16, batch_size=3, progress=False)
    text = book(150)
    (uninterrupted,) = extract([text], loaded, settings)
    passes = -(-uninterrupted.n_windows // 3)
    assert uninterrupted.n_windows > 20
    counting(monkeypatch, crash_at=passes // 2 + 1)
    path = tmp_path / "c.sqlite"
    with pytest.raises(KeyboardInterrupt):
        extract([text], loaded, settings, cache=StatsCache(path))
    assert windows_in(path) == 3 * (passes // 2)  # every finished batch's windows were committed
    calls = counting(monkeypatch)
    cache = StatsCache(path)
    (resumed,) = extract([text], loaded, settings, cache=cache)
    assert len(calls) == passes - passes // 2  # only the missing windows ran
    assert min(part for call in calls for part in call) == 3 * (passes // 2)
    assert cache.window_hits == 3 * (passes // 2) and cache.stored == 1
    assert_identical(uninterrupted, resumed)  # bit for bit
    assert windows_in(path) == 0  # the finished document replaced its windows
    calls.clear()
    (again,) = extract([text], loaded, settings, cache=StatsCache(path))
    assert calls == [] and np.array_equal(again.logprob, resumed.logprob)


@pytest.mark.slow
def test_windows_beside_short_documents_resume_and_a_shared_batch_is_not_rerun(tiny_loaded, tmp_path, monkeypatch):
    """Short documents that finished in a batch beside a long one's windows come back as documents; the long one's
    windows as windows; the batch they shared is not run again."""
    loaded = tiny_loaded["llama"]
    settings = ExtractionSettings(window=32, stride=20, batch_size=4, progress=False)
    texts = [book(120, seed=1), "quiet fields of barley", book(80, seed=2), "old mills", "the river carried"]
    uninterrupted = extract(texts, loaded, settings)
    everything = counting(monkeypatch)
    extract(texts, loaded, settings)
    counting(monkeypatch, crash_at=len(everything) - 1)
    path = tmp_path / "c.sqlite"
    with pytest.raises(KeyboardInterrupt):
        extract(texts, loaded, settings, cache=StatsCache(path))
    calls = counting(monkeypatch)
    cache = StatsCache(path)
    resumed = extract(texts, loaded, settings, cache=cache)
    assert len(calls) == 2 and cache.window_hits > 0
    for a, b in zip(uninterrupted, resumed, strict=True):
        assert_identical(a, b)


@pytest.mark.slow
def test_a_window_entry_is_used_only_in_its_own_batch_layout_and_format(tiny_loaded, tmp_path, monkeypatch):
    loaded = tiny_loaded["gpt2"]
    text = book(150, seed=3)
    path = tmp_path / "c.sqlite"
    two = ExtractionSettings(window=32, stride=16, batch_size=2, progress=False)
    counting(monkeypatch, crash_at=6)
    with pytest.raises(KeyboardInterrupt):
        extract([text], loaded, two, cache=StatsCache(path))
    assert windows_in(path) == 10
    # another batch size puts the windows in other batches, where their last bits may differ: nothing is reused
    three = ExtractionSettings(window=32, stride=16, batch_size=3, progress=False)
    calls = counting(monkeypatch)
    cache = StatsCache(path)
    (other,) = extract([text], loaded, three, cache=cache)
    assert cache.window_hits == 0 and len(calls) == -(-other.n_windows // 3)
    (fresh,) = extract([text], loaded, three)
    assert_identical(fresh, other)
    # a window entry written in another format is never read
    monkeypatch.setattr(cache_module, "WINDOW_FORMAT", "0-older")
    calls = counting(monkeypatch)
    cache = StatsCache(path)
    extract([text], loaded, two, cache=cache)
    assert cache.window_hits == 0 and len(calls) == -(-other.n_windows // 2)


@pytest.mark.slow
def test_a_damaged_window_entry_is_recomputed(tiny_loaded, tmp_path, monkeypatch):
    loaded = tiny_loaded["llama"]
    text = book(150, seed=4)
    settings = ExtractionSettings(window=32, stride=16, batch_size=2, progress=False)
    (uninterrupted,) = extract([text], loaded, settings)
    path = tmp_path / "c.sqlite"
    counting(monkeypatch, crash_at=5)
    with pytest.raises(KeyboardInterrupt):
        extract([text], loaded, settings, cache=StatsCache(path))
    with sqlite3.connect(path) as connection:  # truncate one window's arrays
        connection.execute("UPDATE windows SET arrays = substr(arrays, 1, 20) WHERE rowid = 1")
    checked, damaged = StatsCache(path).verify()
    assert checked == 8 and len(damaged) == 1
    calls = counting(monkeypatch)
    cache = StatsCache(path)
    (resumed,) = extract([text], loaded, settings, cache=cache)
    assert cache.rejected == 1 and cache.window_hits == 7
    assert len(calls) == -(-uninterrupted.n_windows // 2) - 3  # the damaged window's batch runs again
    assert_identical(uninterrupted, resumed)


class RecordingBar:
    """Stands in for tqdm: records the total, the starting point and every update."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, *, total, initial=0, **kwargs):
        self.total, self.initial, self.updates, self.lines = total, initial, [], []
        RecordingBar.made.append(self)

    def update(self, n):
        self.updates.append(n)

    def write(self, line, file=None):
        self.lines.append(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.slow
def test_cost_is_said_first_and_the_bar_moves_window_batch_by_window_batch(tiny_loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_MIA_CACHE", str(tmp_path / "home"))
    monkeypatch.setattr(extract_module, "tqdm", RecordingBar)
    monkeypatch.setattr("llm_mia.engine.throughput.MIN_SECONDS_TO_REMEMBER", 0.0)
    loaded = tiny_loaded["gpt2"]
    text = book(200, seed=5)
    settings = ExtractionSettings(window=32, stride=16, batch_size=4, progress=True)
    (stats,) = extract([text], loaded, settings, description="target tiny")
    bar = RecordingBar.made[-1]
    passes = -(-stats.n_windows // 4)
    assert len(bar.updates) == passes and sum(bar.updates) == bar.total == stats.n_scored and bar.initial == 0
    assert bar.lines[0] == (
        f"target tiny: {stats.n_scored:,} tokens to score in 1 document(s): {stats.n_windows} window(s) of up to 32 "
        f"tokens (stride 16), {passes} forward pass(es); an estimate of the time follows the first forward pass"
    )
    assert bar.lines[1].startswith("target tiny: ") and "to go at the speed of the first forward pass" in bar.lines[1]
    remembered = json.loads((tmp_path / "home" / "throughput.json").read_text())
    assert len(remembered) == 1 and next(iter(remembered.values()))["tokens_per_second"] > 0
    # the next run of the kind estimates at once, from the remembered speed; a resumed one starts part-way
    counting(monkeypatch, crash_at=3)
    with pytest.raises(KeyboardInterrupt):
        extract([text], loaded, settings, cache=StatsCache(tmp_path / "c.sqlite"), description="target tiny")
    assert "at the speed of the last such run here" in RecordingBar.made[-1].lines[0]
    counting(monkeypatch)
    extract([text], loaded, settings, cache=StatsCache(tmp_path / "c.sqlite"), description="target tiny")
    bar = RecordingBar.made[-1]
    assert bar.initial > 0 and bar.initial + sum(bar.updates) == bar.total
    assert bar.lines[0].startswith("target tiny: resuming, 0 document(s) and 8 finished window(s) of 1 unfinished")
    assert "tokens already in the stats cache" in bar.lines[1]


def _score_command(model: str, text: Path, cache: list[str], output: Path) -> list[str]:
    return [
        "score",
        "--model",
        model,
        "--input",
        str(text),
        "--scorers",
        "loss",
        "min_k",
        "--window",
        "32",
        "--stride",
        "16",
        "--batch-size",
        "2",
        "--threads",
        "1",
        *cache,
        "--no-progress",
        "--output",
        str(output),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_one_document_book_killed_mid_way_resumes_mid_way(tiny_model_dirs, tmp_path, monkeypatch, how):
    """A real process scoring one long text file is killed (SIGKILL) or interrupted (Ctrl-C) once half its windows
    are committed; the rerun runs only the missing windows and writes the uninterrupted row."""
    home = tmp_path / "home"  # the remembered throughput and file hashes, away from the user's own
    monkeypatch.setenv("LLM_MIA_CACHE", str(home))
    text = tmp_path / "book.txt"
    text.write_text(book(24_000, seed=6))  # one line of about 98,000 tokens: 6,100 windows of 32
    model = str(tiny_model_dirs["gpt2"])
    whole = tmp_path / "whole.jsonl"
    calls = counting(monkeypatch)
    assert main([*_score_command(model, text, ["--no-cache"], whole)]) == 0
    passes = len(calls)
    (row,) = [json.loads(line) for line in whole.read_text().splitlines()]
    half = row["n_windows"] // 2
    cache_dir = tmp_path / "cache"
    command = [
        sys.executable,
        "-m",
        "llm_mia",
        *_score_command(model, text, ["--cache-dir", str(cache_dir)], tmp_path / "killed.jsonl"),
    ]
    environment = {**os.environ, "PYTHONPATH": str(Path(llm_mia.__file__).parents[1]), "LLM_MIA_CACHE": str(home)}
    # Ctrl-C as a terminal sends it: SIGINT at its default, even when the tests run as a background job (a shell
    # without job control starts those with SIGINT ignored, and Python then never raises KeyboardInterrupt)
    process = subprocess.Popen(
        command,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    database = cache_dir / "tokenstats.sqlite"
    deadline, windows = time.time() + 300, 0
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
        try:
            windows = windows_in(database) if database.exists() else 0
        except sqlite3.OperationalError:  # not created yet, or busy
            continue
        if windows >= half:
            break
    process.send_signal(how)
    _, error = process.communicate(timeout=60)
    with sqlite3.connect(database) as connection:
        committed = connection.execute("SELECT count(*) FROM windows").fetchone()[0]
        documents = connection.execute("SELECT count(*) FROM stats").fetchone()[0]
    assert documents == 0 and half <= committed < row["n_windows"], "the run should have stopped inside the document"
    assert not (tmp_path / "killed.jsonl").exists()
    if how == signal.SIGINT:
        assert process.returncode == 130
        assert "interrupted" in error and "run the same command again to resume" in error
        assert "Traceback" not in error
    calls.clear()
    resumed = tmp_path / "resumed.jsonl"
    assert main([*_score_command(model, text, ["--cache-dir", str(cache_dir)], resumed)]) == 0
    assert len(calls) == passes - committed // 2  # only the batches of missing windows ran
    record = json.loads((tmp_path / "resumed.jsonl.run.json").read_text())
    assert record["execution"]["cache"]["window_hits"] == committed
    assert resumed.read_text() == whole.read_text()  # the same row, to the last digit
    assert windows_in(database) == 0


@pytest.mark.slow
def test_a_cache_written_before_windows_were_kept_still_serves_its_documents(tiny_loaded, tmp_path, monkeypatch):
    """A database without the windows table (as earlier versions wrote it) opens, gains the table, and its
    document entries, whose numbers this version computes bit for bit the same, are still read."""
    loaded = tiny_loaded["llama"]
    texts = [book(120, seed=7), "quiet fields of barley"]
    settings = ExtractionSettings(window=32, stride=16, batch_size=2, progress=False)
    path = tmp_path / "c.sqlite"
    first = extract(texts, loaded, settings, cache=StatsCache(path))
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE windows")
    calls = counting(monkeypatch)
    cache = StatsCache(path)
    again = extract(texts, loaded, settings, cache=cache)
    assert calls == [] and cache.hits == 2 and windows_in(path) == 0
    for a, b in zip(first, again, strict=True):
        assert_identical(a, b)
