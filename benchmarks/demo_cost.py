"""What `llm-mia demo` costs a newcomer: wall time and peak memory of a first run (empty cache: split, fine-tune,
scoring) and of a rerun (the fine-tuned model cached, so scoring only), measured on this machine.

Each run is a separate `llm-mia demo` process with `LLM_MIA_CACHE` pointing at a fresh directory; peak memory is
each child's maximum resident set size (``os.wait4``, which Linux reports in KiB). The machine's
CPU, core count and load average are printed with the figures, because both depend on them.

What keeps the demo within 2 GiB (the figures of each step from this script, on this project's machine):
- A float32 AdamW fine-tune of all 135 M weights holds the weights, their gradients and two moment estimates,
  16 bytes per weight, 2.0 GiB before any activation (a training peak of 3.2-3.3 GiB). The demo trains the top 10 of
  SmolLM2's 30 blocks (35 M weights; how that recipe was chosen: ``benchmarks/demo_recipe.py``), two documents per
  forward pass, with the blocks' activations recomputed in the backward pass.
- The memory freed after training and after the GGUF conversion is handed back to the operating system
  (``llm_mia.backends.memory.release_freed_memory``), so that scoring starts from what is in use.
- Scoring reads the base model first and releases it before the fine-tuned model loads (one model in memory at a
  time), four documents per forward pass.

    python benchmarks/demo_cost.py                 # two runs: a few minutes each on 2 idle cores
    python benchmarks/demo_cost.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_demo(cache: Path, output: Path, threads: str) -> tuple[float, float]:
    """One `llm-mia demo` process: (wall seconds, its own peak RSS in GiB, from ``wait4``'s resource usage)."""
    environment = {**os.environ, "LLM_MIA_CACHE": str(cache)}
    command = [sys.executable, "-m", "llm_mia", "demo", "--output-dir", str(output), "--overwrite"]
    command += ["--threads", threads, "--no-progress"]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"llm-mia demo failed (exit {child.returncode}); run it alone to see why")
    return seconds, usage.ru_maxrss / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="auto", help="passed to llm-mia demo (default: auto)")
    args = parser.parse_args(argv)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="llm-mia-demo-cost-") as scratch:
        cache, output = Path(scratch) / "cache", Path(scratch) / "report"
        first = run_demo(cache, output, args.threads)
        print(f"first run (split, fine-tune, scoring): {first[0]:.0f} s, peak RSS {first[1]:.2f} GiB")
        rerun = run_demo(cache, output, args.threads)
        print(f"rerun (fine-tuned model cached):       {rerun[0]:.0f} s, peak RSS {rerun[1]:.2f} GiB")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
