"""The benchmark scripts still run against the library they measure: each on the smallest input it takes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a fresh Python process importing torch and transformers
def test_the_long_document_benchmark_scores_every_size_and_prints_the_ratio(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "long_document.py"), "--sizes", "2000", "20000",
         "--text", "synthetic", "--threads", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    table = {line.split()[0]: line.split() for line in lines if line.strip().startswith(("2KB", "20KB"))}
    assert set(table) == {"2KB", "20KB"}
    assert int(table["2KB"][1]) == 10 and int(table["20KB"][1]) == 1  # the same amount of text per size
    assert any(line.startswith("rate at 20 KB relative to 2 KB: ") for line in lines)
