"""Check an evidence bundle independently: every file, the plan, the query log, the report, and (when the
model is here) the scores themselves.

examples:
  llm-mia verify bundle/
  llm-mia verify bundle/ --rescore 50 --model /models/the-suspect-model
  llm-mia verify bundle/ --full                     # recompute the whole test and compare its p-value

Checks: every file against MANIFEST.sha256 (nothing missing, nothing added); plan.json against its recorded
hash, and results.json bound to it; the query log's hash chain from the plan's hash to the head in run.json;
the report's evidence hash and verdict; every passage against the plan; the model's files and the input files
against the plan (when here); --rescore N passages drawn at random (default 20) re-scored and compared with
scores.jsonl (tolerance 1e-4); --full the whole test again. Each check prints pass, FAIL (naming the file and
what changed) or "not run" (e.g. the model is not on this machine). Exit status: 0 when every check ran and
passed, 1 when one failed, 3 when none failed but some could not run here (2: the bundle could not be read).
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import summarise


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="the bundle directory written by `llm-mia evidence run`")
    parser.add_argument("--rescore", type=int, default=20, help="passages to re-score when the model is here (20)")
    parser.add_argument("--full", action="store_true", help="recompute the whole test and compare its p-value")
    parser.add_argument("--model", help="where the planned target model is on this machine (checked by hash)")
    parser.add_argument("--suspect", help="where the planned suspect input is, if moved (checked by hash)")
    parser.add_argument("--control", help="where the planned control input is, if moved (checked by hash)")
    parser.add_argument("--secret", help="where a canary plan's secret file is, if moved (checked by hash)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the passages drawn for re-scoring (0)")


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.verify import verify_bundle

    inputs = {side: path for side, path in (("suspect", args.suspect), ("control", args.control)) if path}
    verification = verify_bundle(
        args.bundle,
        rescore=args.rescore,
        full=args.full,
        model=args.model,
        inputs=inputs,
        seed=args.seed,
        secret=args.secret,
    )
    summarise(verification)
    return verification.exit_status
