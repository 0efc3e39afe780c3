"""Evaluate scorers on a labelled set: AUROC [CI], TPR at low FPR with its n, and a blind baseline beside them.

examples:
  llm-mia evaluate --scores scores.jsonl                         # a labelled score file from `llm-mia score`
  llm-mia evaluate --scores scores.jsonl --input texts.jsonl --output-dir eval/
  llm-mia evaluate --model smollm2-135m --input labelled.jsonl --output-dir eval/
  llm-mia evaluate --model ./my-model --input WikiMIA_length32.jsonl --format wikimia --scorers loss zlib min_k
  llm-mia evaluate --model ./my-model --input mimir_arxiv/ --format mimir --save-scores scores.jsonl

With --scores, --scorers picks score columns by name (default: all); with --input it names the scorers to run.
Labels: 1 = member, 0 = non-member; unlabelled rows are ignored. Per scorer, rows with a non-ok status or no
score are excluded and counted. TPR@FPR figures show n, the number of non-members they rest on: with n
non-members the smallest FPR they can resolve is 1/n, and figures below it are marked.

The blind baseline (a bag-of-words classifier that never sees the model, Das et al. 2024) needs the texts:
they come from --input, or from the input named in the score file's run record when its hash still matches.
If it separates members from non-members as well as the best attack, a warning says the sets differ in
distribution and the attack numbers do not measure membership.

--output-dir DIR writes evaluation.json (all numbers, settings, and the model / data / scorer identity from
the run record), roc.png/.svg, roc_loglog.png/.svg and histograms.png/.svg.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from llm_mia.benchmark_data import FORMATS, detect_format, load_benchmark, load_mimir, load_wikimia
from llm_mia.cli.common import add_input_arguments, add_model_arguments, add_scorer_arguments, score_from_args
from llm_mia.documents import Columns, Document, read_documents
from llm_mia.errors import InputError, LlmMiaError
from llm_mia.metrics import DEFAULT_FPRS, evaluate
from llm_mia.models import sha256_file
from llm_mia.report import format_table, write_outputs
from llm_mia.results import (
    RUN_RECORD_SUFFIX,
    check_output_path,
    read_scores,
    score_columns,
    sha256_documents,
    write_rows,
    write_run_record,
)

logger = logging.getLogger(__name__)

OUTPUT_FILES = ("evaluation.json", "roc", "roc_loglog", "histograms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scores", help="a labelled score file (.jsonl/.csv) from `llm-mia score`; skips scoring")
    add_input_arguments(  # no built-in default here: evaluation needs labels
        parser,
        input_help="labelled texts to score and evaluate (or, with --scores, the texts for the blind baseline)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="layout of --input: wikimia (input/label), mimir (member/nonmember pairs), generic (text/label "
        "columns) or auto (default: detect from the fields)",
    )
    add_model_arguments(parser)
    add_scorer_arguments(parser)
    group = parser.add_argument_group("evaluation")
    group.add_argument(
        "--fpr",
        type=float,
        nargs="+",
        default=list(DEFAULT_FPRS),
        metavar="FPR",
        help="false-positive rates for TPR@FPR (default: 0.001 0.01 0.05)",
    )
    group.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUROC CI (1000)")
    group.add_argument("--confidence", type=float, default=0.95, help="confidence level of intervals (0.95)")
    group.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the blind baseline folds (0)")
    group.add_argument("--folds", type=int, default=5, help="cross-validation folds of the blind baseline (5)")
    group.add_argument("--no-blind", action="store_true", help="skip the blind baseline")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", help="write evaluation.json and the plots (PNG and SVG) into this directory")
    out.add_argument("--save-scores", help="when scoring, also write the score rows to this .jsonl/.csv file")
    out.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _read_texts(path: str, args: argparse.Namespace) -> list[Document]:
    """Documents from an input file in the format asked for, labels not required (they come from the scores)."""
    columns = Columns(text=args.text_column, id=args.id_column, label=args.label_column, group=args.group_column)
    form = detect_format(path, columns=columns, split=args.split) if args.format == "auto" else args.format
    if form == "wikimia":
        return load_wikimia(path, split=args.split)
    if form == "mimir":
        return load_mimir(path, split=args.split)
    return read_documents(path, columns=columns, split=args.split)


def _texts_from_run_record(record: dict[str, Any] | None, args: argparse.Namespace) -> tuple[dict | None, str]:
    """Find the scored texts through the run record's input path; use them only if their hash matches."""
    source = ((record or {}).get("input") or {}).get("source")
    if not source:
        return None, "no texts: pass --input with the scored texts to run the blind baseline"
    if not Path(source).exists():
        return None, f"the scored input {source} is gone; pass --input with the scored texts"
    try:
        documents = _read_texts(source, args)
    except LlmMiaError as error:
        return None, f"could not re-read the scored input {source} ({error}); pass --input"
    if sha256_documents([d.text for d in documents]) != record["input"].get("sha256"):
        return None, f"the texts in {source} changed since scoring (hash differs); pass --input with the scored texts"
    return {d.id: d.text for d in documents}, f"texts re-read from {source} (hash matches the run record)"


def _load_scored(args: argparse.Namespace) -> tuple[Any, dict[str, str] | None, dict[str, Any]]:
    """The score frame, the texts by id (or None) and the identity block for the JSON."""
    import pandas as pd

    if args.scores:
        path = Path(args.scores)
        frame = read_scores(path)
        record_path = Path(f"{path}{RUN_RECORD_SUFFIX}")
        record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else None
        identity: dict[str, Any] = {
            "scores": {"path": str(path), "sha256": sha256_file(path)},
            "run_record": record,
            "run_record_note": None if record else f"no run record found at {record_path}",
        }
        if args.no_blind:
            texts, note = None, "skipped (--no-blind)"
        elif args.input:
            documents = _read_texts(args.input, args)
            texts, note = {d.id: d.text for d in documents}, f"texts from {args.input}"
        else:
            texts, note = _texts_from_run_record(record, args)
        identity["texts"] = note
        if args.scorers:
            missing = [s for s in args.scorers if s not in score_columns(frame)]
            if missing:
                raise InputError(
                    f"--scorers {' '.join(missing)}: not a column of {path}; available: "
                    f"{', '.join(score_columns(frame))}"
                )
        return frame, texts, identity
    if not args.input:
        raise LlmMiaError(
            "nothing to evaluate: pass --scores FILE (a labelled score file) or --input LABELLED (scores with "
            "--model, default the packaged model, then evaluates)"
        )
    columns = Columns(text=args.text_column, id=args.id_column, label=args.label_column, group=args.group_column)
    documents = load_benchmark(args.input, format=args.format, columns=columns, split=args.split)
    save = check_output_path(args.save_scores, overwrite=args.overwrite) if args.save_scores else None
    rows, record = score_from_args(args, documents, args.input)
    record["input"]["format"] = args.format
    if save is not None:
        write_rows(rows, save)
        write_run_record(save, record)
        print(f"wrote {len(rows)} score rows to {save} and {save}{RUN_RECORD_SUFFIX}")
    identity = {
        "scores": None if save is None else {"path": str(save)},
        "run_record": record,
        "texts": "skipped (--no-blind)" if args.no_blind else "the scored input",
    }
    texts = None if args.no_blind else {d.id: d.text for d in documents}
    return pd.DataFrame(rows), texts, identity


def _check_output_dir(directory: str, overwrite: bool) -> Path:
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise LlmMiaError(f"--output-dir {path} is a file; give a directory")
    existing = [path / "evaluation.json"] if (path / "evaluation.json").exists() else []
    if existing and not overwrite:
        raise LlmMiaError(f"{existing[0]} exists; pass --overwrite to replace it, or choose another --output-dir")
    if not path.parent.exists():
        raise LlmMiaError(f"{path.parent}: parent of --output-dir does not exist; create it first")
    return path


def run(args: argparse.Namespace) -> int:
    output_dir = _check_output_dir(args.output_dir, args.overwrite) if args.output_dir else None
    for fpr in args.fpr:
        if not 0 < fpr < 1:
            raise LlmMiaError(f"--fpr {fpr}: false-positive rates lie strictly between 0 and 1 (e.g. 0.01 for 1%)")
    if args.bootstrap < 1:
        raise LlmMiaError(f"--bootstrap {args.bootstrap}: need at least 1 resample (1000 is usual)")
    if not 0 < args.confidence < 1:
        raise LlmMiaError(f"--confidence {args.confidence}: must lie strictly between 0 and 1 (e.g. 0.95)")
    if args.folds < 2:
        raise LlmMiaError(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    frame, texts, identity = _load_scored(args)
    evaluation = evaluate(
        frame,
        texts=texts,
        columns=args.scorers if args.scores and args.scorers else None,
        fprs=args.fpr,
        n_bootstrap=args.bootstrap,
        confidence=args.confidence,
        seed=args.seed,
        folds=args.folds,
    )
    if texts is None:  # say why the texts are missing, not just that they are
        evaluation = dataclasses.replace(evaluation, blind_skipped=identity["texts"])
    labelled = evaluation.n_rows - evaluation.n_unlabelled
    source = args.scores or args.input
    print(f"evaluated {labelled} labelled documents from {source} ({evaluation.n_unlabelled} unlabelled ignored)")
    models = (identity.get("run_record") or {}).get("models") or {}
    for role, model in models.items():
        print(f"{role} model: {model.get('name')} ({model.get('architecture')}, {model.get('dtype')})")
    print()
    for line in format_table(evaluation):
        print(line)
    warning = evaluation.warning()
    if warning:
        print()
        print(warning)
    if output_dir is not None:
        written = write_outputs(evaluation, frame, identity, output_dir)
        print()
        print(f"wrote {', '.join(p.name for p in written)} to {output_dir}")
    return 0
