"""Multi-process scoring on CPU: two processes under torchrun give bit-identical rows to one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from llm_mia.cli import main

pytestmark = pytest.mark.slow

WORDS = "the river carried cold water past old mills while children counted boats and birds above".split()  # noqa: SIM905


def test_two_processes_match_one_process(tiny_model_dirs, tmp_path):
    rng = np.random.default_rng(7)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 60))) for _ in range(60)]
    texts[5] = "the river " * 100  # longer than the window below: several windows, one process
    texts[9] = "   "
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    model = str(tiny_model_dirs["llama"])
    common = ["score", "--model", model, "--input", str(path), "--window", "64", "--batch-size", "4", "--no-progress"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each launched process below: the thread count changes how matmuls round
    try:
        assert main([*common, "--no-cache", "--output", str(tmp_path / "one.jsonl")]) == 0
    finally:
        torch.set_num_threads(threads)

    torchrun = shutil.which("torchrun") or f"{sys.executable} -m torch.distributed.run"
    command = [
        *torchrun.split(),
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "llm_mia",
        *common,
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--output",
        str(tmp_path / "two.jsonl"),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    one = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    two = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["id"] for r in two] == [f"d{i}" for i in range(60)]
    record = json.loads((tmp_path / "two.jsonl.run.json").read_text())
    assert record["execution"]["processes"] == 2
    assert two[5]["n_windows"] > 1 and two[9]["status"].startswith("empty")
    for a, b in zip(one, two, strict=True):
        assert a.keys() == b.keys() and a["status"] == b["status"]
        for column, value in a.items():
            if isinstance(value, float):
                assert b[column] == value, (a["id"], column)  # bit-identical: same batches, same kernels
            else:
                assert b[column] == value
