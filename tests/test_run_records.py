"""A run record states what its own run did: two runs with different settings in one process record what each
records alone in a fresh process (what a scorer's ``prepare`` built, the files a view wrote, the budget
``--batch-size auto`` chose), and score the same rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_mia.backends.loading import ModelSettings
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.io.documents import Document
from llm_mia.scoring.settings import ScoringSettings
from llm_mia.workflows.score import score_documents

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "The quiet river carried cold water past the old mill every spring.",
    "Children counted boats and birds above the fields until dusk.",
    "A lantern swung from the gate while the dogs slept in the barn.",
]
CORPORA = {
    "a": ["Rivers and mills and water.", "Boats on the water near the mill."],
    "b": ["Lanterns, gates and barns at night.", "Dogs sleep in barns.", "Birds above fields at dusk."],
}
PREFIX = ["Snow fell on the harbour and the ships stayed in port.", "The market opened late on Sunday."]


def write_inputs(directory: Path) -> dict[str, str]:
    """The corpora (one JSON line per text) and the ReCaLL prefix file; their paths by name."""
    paths = {}
    for name, texts in {**CORPORA, "prefix": PREFIX}.items():
        path = directory / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
        paths[name] = str(path)
    return paths


def facts(model: str, reference: str, corpus: str, prefix: str, window: int) -> dict:
    """What one scoring run's record states about its scorers and batches, and its rows (``reference``: a
    reference model no scorer of the run reads, or "")."""
    settings = ScoringSettings(
        models=ModelSettings(model=model, reference=reference or None, device="cpu"),
        scorers=(f"dc_pdd:corpus={corpus}", f"recall:prefix={prefix}", "loss"),
        extraction=ExtractionSettings(batch_size="auto", window=window, threads=1, progress=False),
        cache=False,
    )
    run = score_documents([Document(id=str(i), text=t) for i, t in enumerate(TEXTS)], settings)
    return {
        "rows": run.rows,
        "scorers": run.record["scorers"],
        "batch_tokens_auto": run.record["execution"]["batch_tokens_auto"],
    }


def in_fresh_process(*arguments: object) -> dict:
    code = (
        "import json, sys; from test_run_records import facts; "
        "print(json.dumps(facts(*sys.argv[1:5], int(sys.argv[5]))))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, arguments)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh Python processes, each importing torch and transformers
def test_two_runs_in_one_process_record_what_each_records_alone(tiny_model_dirs, tmp_path) -> None:
    gpt2, llama = str(tiny_model_dirs["gpt2"]), str(tiny_model_dirs["llama"])
    paths = write_inputs(tmp_path)
    first = facts(gpt2, "", paths["a"], paths["prefix"], 64)
    # the second run names the first's model as a reference that none of its scorers reads: it runs no batch on it
    second = facts(llama, gpt2, paths["b"], paths["prefix"], 128)
    # the runs differ where their settings do: a table per corpus (and tokenizer), a budget per model and window
    dc_pdd = [run["scorers"][0]["prepared"] for run in (first, second)]
    assert [p["corpus_texts"] for p in dc_pdd] == [2, 3] and dc_pdd[0]["corpus_sha256"] != dc_pdd[1]["corpus_sha256"]
    assert first["batch_tokens_auto"][gpt2] > 0 and second["batch_tokens_auto"] == {
        llama: second["batch_tokens_auto"][llama],
        gpt2: None,
    }
    assert "prepared" not in first["scorers"][1] and "prepared" not in first["scorers"][2]
    # and each states exactly what the same run states alone in a fresh process
    assert in_fresh_process(llama, gpt2, paths["b"], paths["prefix"], 128) == json.loads(json.dumps(second))
    assert in_fresh_process(gpt2, "", paths["a"], paths["prefix"], 64) == json.loads(json.dumps(first))
