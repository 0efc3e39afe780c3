"""Carry out a pre-registered plan and write an evidence bundle that anyone can verify.

examples:
  llm-mia evidence run plan.json --output-dir bundle/
  llm-mia evidence run plan.json --output-dir bundle/ --model /models/the-suspect-model   # files checked by hash
  llm-mia evidence run plan.json --output-dir bundle/ --suspect /mnt/case/my_book.txt     # inputs moved

Before any score is computed, every model file, source file and passage is checked against the plan: the
first difference is refused, naming the file and both hashes. The test then runs exactly as planned, every
model call logged in a hash-chained query log, and the bundle gets: plan.json (+ .sha256), results.json (every
number, bound to the plan's hash), passages.jsonl, scores.jsonl, query-log.jsonl, environment.json, run.json,
the figures, report.html (self-contained: no request leaves the page) and report.pdf (printed by headless
Chromium), and MANIFEST.sha256 (check it with `sha256sum -c MANIFEST.sha256` or `llm-mia verify`). A killed
run resumes from the stats cache; two runs of one plan give identical results.json.
"""

from __future__ import annotations

import argparse

from llm_mia.cli.common import cache_from_args
from llm_mia.cli.flags import DeprecatedAlias, add_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("run",), help="run: carry out the plan")
    parser.add_argument("plan", help="plan.json written by `llm-mia plan` (with plan.json.sha256 beside it)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--output-dir", help="the bundle directory (must not exist, or --overwrite)")
    where.add_argument(
        "--output",
        dest="output_dir",
        action=DeprecatedAlias,
        help="deprecated: the old name of --output-dir (still works, with a note)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    parser.add_argument("--model", help="where the planned target model is on this machine (checked by hash)")
    parser.add_argument("--reference", help="where the planned reference model is on this machine")
    parser.add_argument("--suspect", help="where the planned suspect input is, if moved (same name; checked by hash)")
    parser.add_argument("--control", help="where the planned control input is, if moved (same name; checked by hash)")
    parser.add_argument("--secret", help="where a canary plan's secret file is, if moved (checked by hash)")
    add_flags(parser, "cache_dir", "no_cache")
    parser.add_argument("--no-pdf", action="store_true", help="skip report.pdf (needs Chromium otherwise)")
    add_flags(parser, "no_progress")


def run(args: argparse.Namespace) -> int:
    from llm_mia.workflows.evidence import run_evidence

    cache = cache_from_args(args)
    bundle = run_evidence(
        args.plan,
        args.output_dir,
        overwrite=args.overwrite,
        cache=cache,
        model=args.model,
        reference=args.reference,
        suspect=args.suspect,
        control=args.control,
        secret=args.secret,
        pdf=not args.no_pdf,
        progress=not args.no_progress,
    )
    print(f"verdict: {bundle.verdict_sentence}")
    print(f"plan SHA-256: {bundle.plan_sha256}")
    print(f"evidence SHA-256: {bundle.evidence_sha256}")
    print(f"wrote the bundle to {bundle.directory}" + ("" if bundle.pdf else " (no report.pdf: --no-pdf)"))
    print(f"check it with: llm-mia verify {bundle.directory}")
    return 0
