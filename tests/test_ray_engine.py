"""The Ray Data engine on a real local Ray cluster: rows bit-identical to one process (reference and lowercase
views included), a killed actor restarted without recomputing committed blocks, resume from committed blocks,
Ray Data reading JSONL and Parquet through the CLI, and clear errors (no Ray, an address nobody answers)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from llm_mia.backends.loading import ModelSettings
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.documents import Document
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.workflows.score import score_documents

ray = pytest.importorskip("ray", reason="Ray Data is an optional extra: pip install 'llm-mia[ray]'")
from llm_mia.scoring.ray_engine import RaySettings, require_ray  # noqa: E402

pytestmark = pytest.mark.cluster  # a module fixture starts a local Ray cluster for every test here

SCORERS = ("loss", "zlib", "lowercase", "reference", "min_k", "min_k_plus_plus")
WORDS = [
    "The",
    "cat",
    "sat",
    "on",
    "a",
    "Mat",
    "and",
    "then",
    "ran",
    "far",
    "away",
    "into",
    "green",
    "Fields",
    "of",
    "old",
    "England",
]


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    rng = random.Random(0)
    return [
        Document(id=f"d{i}", text=" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 260))), label=i % 2)
        for i in range(300)
    ]


@pytest.fixture(scope="module")
def models(tiny_model_dirs) -> ModelSettings:
    return ModelSettings(model=str(tiny_model_dirs["llama"]), reference=str(tiny_model_dirs["gpt2"]), device="cpu")


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    """One local cluster for the module, started from the main thread (as the CLI does): a cluster first joined
    from another thread lost its object-store connection after an actor was killed."""
    from llm_mia.scoring.ray_engine import connect

    connect(RaySettings(actors=2))
    yield
    if ray.is_initialized():
        ray.shutdown()


def _settings(models: ModelSettings, cache, ray_settings=None, block: int = 16) -> ScoringSettings:
    extraction = ExtractionSettings(batch_size=4, block_documents=block, threads=1, progress=False)
    return ScoringSettings(models=models, scorers=SCORERS, extraction=extraction, cache=cache, ray=ray_settings)


def _actor_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "BlockScorer"], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_two_actors_give_the_single_process_rows_bit_for_bit_even_when_one_is_killed(
    documents, models, tmp_path
) -> None:
    """300 documents in 19 blocks over 2 actors; one actor is killed (SIGKILL, by pid) once the first block is
    committed. Ray restarts it, every block is delivered once, and the rows equal a single process's exactly."""
    calls = {"n": 0}

    def count(event: dict) -> None:
        calls["n"] += event["event"] == "model call"

    local = score_documents(documents, _settings(models, cache=False), observer=count)
    commit = tmp_path / "blocks"
    settings = _settings(models, cache=tmp_path / "stats.sqlite", ray_settings=RaySettings(actors=2, commit_dir=commit))
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(run=score_documents(documents, settings)))
    worker.start()
    killed = None
    deadline = time.time() + 300
    while worker.is_alive() and time.time() < deadline:
        if killed is None and commit.is_dir() and any(commit.glob("*.jsonl")) and _actor_pids():
            killed = _actor_pids()[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    worker.join()
    assert killed is not None, "the run ended before an actor could be killed"
    run = result["run"]
    assert run.rows == local.rows  # bitwise: JSON floats round-trip exactly
    execution = run.record["execution"]
    assert execution["blocks"] == 19 and execution["blocks_computed"] == 19
    assert execution["actor_processes_seen"] >= 2
    # committed blocks are not recomputed: the delivered blocks' model calls add up to at most one single-process
    # run's (the killed actor's unfinished batches were taken from the shared stats cache where it had stored them)
    assert 0 < execution["model_calls"] <= calls["n"]
    again = score_documents(documents, settings)  # everything committed: no model call at all
    assert again.rows == local.rows
    assert again.record["execution"]["blocks_committed_before"] == 19
    assert again.record["execution"]["model_calls"] == 0


def test_a_rerun_computes_only_the_blocks_not_committed(documents, models, tmp_path) -> None:
    commit = tmp_path / "blocks"
    settings = _settings(models, cache=False, ray_settings=RaySettings(actors=2, commit_dir=commit), block=64)
    first = score_documents(documents, settings)
    files = sorted(commit.glob("block-*.jsonl"))
    assert len(files) == 5
    for path in files[1:3]:
        path.unlink()  # as if the driver died before these two came back
    second = score_documents(documents, settings)
    assert second.rows == first.rows
    assert second.record["execution"]["blocks_committed_before"] == 3
    assert second.record["execution"]["blocks_computed"] == 2
    changed = [*documents[:-1], Document(id="d299", text="A changed last document.", label=1)]
    third = score_documents(changed, settings)  # only the last block's key changed
    assert third.record["execution"]["blocks_computed"] == 1 and third.rows[:256] == first.rows[:256]


def test_the_cli_reads_jsonl_and_parquet_with_ray_data(documents, tiny_model_dirs, tmp_path, capsys) -> None:
    import pandas as pd

    from llm_mia.cli import main

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(d.__dict__) + "\n" for d in documents[:40]))
    pd.DataFrame([d.__dict__ for d in documents[:40]]).to_parquet(tmp_path / "in.parquet")
    common = ["score", "--model", str(tiny_model_dirs["llama"]), "--device", "cpu", "--threads", "1", "--no-cache"]
    common += ["--scorers", "loss", "min_k", "--block-documents", "16", "--no-progress"]
    assert main([*common, "--input", str(source), "--output", str(tmp_path / "local.jsonl")]) == 0
    ray_args = ["--engine", "ray", "--ray-actors", "2", "--ray-commit-dir", str(tmp_path / "blocks")]
    assert main([*common, *ray_args, "--input", str(source), "--output", str(tmp_path / "ray.jsonl")]) == 0
    parquet = [*common, *ray_args, "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "pq.jsonl")]
    assert main(parquet) == 0
    local = (tmp_path / "local.jsonl").read_text()
    assert (tmp_path / "ray.jsonl").read_text() == local and (tmp_path / "pq.jsonl").read_text() == local
    record = json.loads((tmp_path / "ray.jsonl.run.json").read_text())
    assert record["execution"]["engine"] == "ray" and record["execution"]["blocks"] == 3
    assert main([*common, *ray_args, "--input", str(tmp_path / "none.jsonl")]) != 0
    assert "no such file" in capsys.readouterr().err


def test_an_address_nobody_answers_is_refused_within_the_timeout(documents, models) -> None:
    if ray.is_initialized():
        ray.shutdown()
    settings = _settings(models, cache=False, ray_settings=RaySettings(address="127.0.0.1:9", connect_timeout=3))
    started = time.time()
    with pytest.raises(LlmMiaError, match=r"nothing answers at 127\.0\.0\.1:9"):
        score_documents(documents[:5], settings)
    assert time.time() - started < 10


def test_without_ray_installed_the_error_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(LlmMiaError, match=r"pip install \"llm-mia\[ray\]\""):
        require_ray()
    from llm_mia.cli import main

    assert main(["score", "--engine", "ray", "--no-cache"]) != 0


def test_committed_block_files_are_plain_jsonl_named_by_their_key(documents, models, tmp_path) -> None:
    commit = tmp_path / "blocks"
    score_documents(documents[:20], _settings(models, cache=False, ray_settings=RaySettings(commit_dir=commit)))
    files = sorted(path.name for path in commit.glob("*.jsonl"))
    assert [name.split("-")[1] for name in files] == ["000000", "000001"]
    rows = [json.loads(line) for line in (commit / files[0]).read_text().splitlines()]
    assert [row["id"] for row in rows] == [f"d{i}" for i in range(16)]
    # beside each block, what its actor prepared and recorded (JSON): nothing else is in the directory
    records = sorted(path.name for path in commit.glob("*.record.json"))
    assert records == [name.removesuffix(".jsonl") + ".record.json" for name in files]
    assert len(list(commit.iterdir())) == 4 and "scorers" in json.loads((commit / records[0]).read_text())


def test_evaluate_scores_on_ray_as_in_one_process(documents, tiny_model_dirs, tmp_path) -> None:
    from llm_mia.cli import main

    source = tmp_path / "labelled.jsonl"
    source.write_text("".join(json.dumps(d.__dict__) + "\n" for d in documents[:60]))
    common = ["evaluate", "--model", str(tiny_model_dirs["llama"]), "--device", "cpu", "--threads", "1"]
    common += ["--input", str(source), "--scorers", "loss", "zlib", "--no-cache", "--no-blind", "--no-progress"]
    common += ["--block-documents", "16", "--bootstrap", "50"]
    assert main([*common, "--save-scores", str(tmp_path / "local.jsonl")]) == 0
    ray_args = ["--engine", "ray", "--ray-commit-dir", str(tmp_path / "blocks")]
    assert main([*common, *ray_args, "--save-scores", str(tmp_path / "ray.jsonl")]) == 0
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()
    record = json.loads((tmp_path / "ray.jsonl.run.json").read_text())
    assert record["tool"] == "llm-mia evaluate" and record["execution"]["blocks"] == 4


def test_the_run_record_states_what_the_actors_prepared(documents, models, tmp_path) -> None:
    """DC-PDD's frequency table is built on the actors: the Ray run's record names it exactly as a run in one
    process does, and so does a rerun that takes every block from the commits."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": " ".join(WORDS[i:])}) + "\n" for i in range(5)), encoding="utf-8")
    extraction = ExtractionSettings(batch_size=4, block_documents=16, threads=1, progress=False)
    scorers = ("loss", f"dc_pdd:corpus={corpus}")
    here = ScoringSettings(models=models, scorers=scorers, extraction=extraction, cache=False)
    local = score_documents(documents[:40], here)
    on_ray = ScoringSettings(
        models=models,
        scorers=scorers,
        extraction=extraction,
        cache=False,
        ray=RaySettings(actors=2, commit_dir=tmp_path / "blocks"),
    )
    first = score_documents(documents[:40], on_ray)
    again = score_documents(documents[:40], on_ray)
    assert again.record["execution"]["blocks_committed_before"] == 3
    prepared = local.record["scorers"][1]["prepared"]
    assert prepared["corpus_texts"] == 5 and prepared["tokenizer_id"]
    for run in (first, again):
        assert run.rows == local.rows
        assert run.record["scorers"] == local.record["scorers"]
