"""Verdict-level false-positive rates and power of llm-mia's verdicts, on the designs that break naive tests.

A verdict is a false positive when the toolkit says "consistent with training" (or "member") about text the
model never saw. This script counts such verdicts, with exact (Clopper-Pearson) 95% intervals, and counts
true verdicts on texts a model did train on (power), in four parts:

1. ``simulation``: feature matrices drawn with known structure, through the same functions the commands use
   (``llm_mia.stats.dataset_inference.dataset_inference``, ``llm_mia.stats.verdicts``, ``llm_mia.stats.metrics``): one
   unseen
   work against 30 control works with between-work offsets of 0, 0.2 and 0.5 passage SDs; 31 works with one
   short high-scoring work, and 31 works of 3-200 passages whose first passages score lower (front matter), the
   suspect drawn at random; a long trained book against short works (whole suspect vs common size); one unseen
   work against a single control source; passages cut from long paragraphs; 20 unseen works against 20 control
   works; the best of six correlated scorers; per-document verdicts on 100 unseen documents; power with
   trained works.
   ``thresholds``: a 1% threshold calibrated on 100 controls (marginal guarantee) and 300 (conditional): how
   often its exact realised FPR exceeds 1%.
2. ``grouped``: documents that share a work (a ``group``), simulated: the best of 4 scorers on 20 works x 5
   documents with a work effect of SD 1 and no signal, max-T permuting documents and whole works; verdicts
   on 20 works x 10 documents, BH over documents and over works (Simes within, BH across, then within the
   works selected), counting unseen works among the works called. A false discovery proportion is not a
   count, so each run adds one Bernoulli(FDP) draw: the count is Binomial(runs, FDR) exactly.
3. ``real``: real text through the user's path (files with a group column, cut by the target's tokenizer,
   scored, tested, checked; ``llm_mia.workflows.dataset``), judged by GPT-2s trained from scratch on Wikipedia
   lead summaries (the ``gpt2-wikipedia`` recipe: the target reacts to the kind of text it was trained on), one
   unseen work against 30 distinct control works (``llm_mia.io.real_works``): exchangeable with them (Wikipedia
   articles; Debian changelogs of different packages), or differing in era (WikiMIA events before 2017 against
   2023 on, as collections of 8 articles and as single articles; changelog entries up to 2012 against 2023 on),
   sub-genre (an upstream NEWS against Debian changelogs) or format (a manual page's troff source against
   changelogs). Each design under both statistics: the target's scores, and the gap to the recipe's reference
   model (trained the same way on other summaries). Outcomes counted: consistent / withheld, by which check /
   not distinguishable; and how often the raw work-level p was <= alpha.
4. ``power``: one trained work (8 member summaries) against 19, 49 and 99 control works of 8 unseen summaries,
   after 1, 2 and 4 epochs, under both statistics.
   ``--power-table PATH`` writes the rows ``llm-mia plan`` prints (``llm_mia/data/work_test_power.json``).

    python benchmarks/false_positives.py --parts simulation --reps 400 --threads 1   # about 30 minutes
    python benchmarks/false_positives.py --parts thresholds --reps 4000                # seconds
    python benchmarks/false_positives.py --parts grouped --reps 1000                   # about 15 s
    python benchmarks/false_positives.py --parts real --real-reps 40 --threads 1 --json real.json
    python benchmarks/false_positives.py --parts power --power-reps 12 --threads 1 \
        --power-table llm_mia/data/work_test_power.json

Needs: the set-up's data packages (Wikipedia summaries), WikiMIA in ../shared/data/wikimia, and a Debian system's
/usr/share/doc and /usr/share/man for the changelog and manual-page designs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.stats.metrics import clopper_pearson

ALPHA = 0.05
PARTS = ("simulation", "thresholds", "grouped", "real", "power")


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
    front: float = 0.0,
    front_passages: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Passages of works: 3 correlated membership-like features, a per-work offset ~ N(0, tau); with
    ``paragraph`` > 1, consecutive passages share a paragraph effect (passages cut from one paragraph); the first
    ``front_passages`` of every work moved by ``front`` SD (front matter unlike the body)."""
    sizes = [sizes] * n_works if isinstance(sizes, int) else list(sizes)
    offsets = rng.normal(0, tau, n_works) + shift
    n = sum(sizes)
    x = 0.7 * rng.normal(size=(n, 1)) + 0.7 * rng.normal(size=(n, 3)) + np.repeat(offsets, sizes)[:, None]
    if paragraph > 1:
        x += np.repeat(rng.normal(0, 0.6, n // paragraph + 1), paragraph)[:n, None]
    starts = np.cumsum([0, *sizes[:-1]])
    for start, size in zip(starts, sizes, strict=True):
        x[start : start + min(front_passages, size)] += front
    return x, [f"{prefix}{i}" for i, size in enumerate(sizes) for _ in range(size)]


def _random_suspect(x: np.ndarray, works: list[str], rng: np.random.Generator) -> tuple:
    """One of the works drawn at random as the suspect, the others as controls (so all 31 are exchangeable)."""
    names = list(dict.fromkeys(works))
    chosen = names[int(rng.integers(len(names)))]
    is_suspect = np.array([w == chosen for w in works])
    controls = [w for w in works if w != chosen]
    return x[is_suspect], ["book"] * int(is_suspect.sum()), x[~is_suspect], controls


def _verdict_rate(
    design: str,
    reps: int,
    draw: Callable[[np.random.Generator], tuple],
    *,
    kind: str,
    nominal: str,
    counted: tuple[str, ...] = ("consistent",),
    passage_selection: str = "whole-suspect",
) -> dict[str, Any]:
    from llm_mia.errors import LlmMiaError
    from llm_mia.stats.dataset_inference import dataset_inference

    hits = refused = 0
    for rep in range(reps):
        rng = np.random.default_rng(rep)
        suspect, suspect_works, control, control_works = draw(rng)
        try:
            result = dataset_inference(
                suspect,
                control,
                suspect_works=suspect_works,
                control_works=control_works,
                splits=5,
                permutations=199,
                seed=rep,
                passage_selection=passage_selection,
            )
        except LlmMiaError:  # e.g. a suspect drawn with fewer passages than a test needs: no verdict at all
            refused += 1
            continue
        hits += result.verdict in counted
    row = rate_row(design, hits, reps, kind=kind, nominal=nominal)
    if refused:
        row["refused"] = refused
        row["nominal"] += f"; {refused} run(s) refused, counted as no verdict of training"
    print_row(row)
    return row


def simulation(reps: int) -> list[dict[str, Any]]:

    from llm_mia.stats.dataset_inference import dataset_inference
    from llm_mia.stats.metrics import auroc_interval, max_auroc_permutation_test
    from llm_mia.stats.verdicts import FprCalibrator

    rows = []
    nominal = f"<= {ALPHA}"
    exact = f"<= {1 / 31:.3f} (1/31, exact)"
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
                nominal=exact,
            )
        )

    def short_high(rng: np.random.Generator) -> tuple:
        x, works = _works(rng, 31, [4] + [40] * 30, tau=0.3, prefix="w")
        x[:4] += 2.0  # one short work that scores high
        return _random_suspect(x, works, rng)

    def front_matter(rng: np.random.Generator) -> tuple:
        x, works = _works(rng, 31, list(rng.integers(3, 200, 31)), tau=0.3, prefix="w", front=-1.0, front_passages=5)
        return _random_suspect(x, works, rng)

    for name, draw_design in (
        ("31 works, one short (4 passages) and high-scoring, the suspect drawn at random", short_high),
        ("31 works of 3-200 passages whose first 5 score 1 SD lower, the suspect drawn at random", front_matter),
    ):
        rows.append(_verdict_rate(name, reps, draw_design, kind="false positive", nominal=exact))

    def long_book(rng: np.random.Generator, shift: float) -> tuple:
        control, works = _works(rng, 30, list(rng.integers(3, 9, 30)), tau=0.15, prefix="c")
        suspect, _ = _works(rng, 1, 120, tau=0.15, shift=shift, prefix="s")
        return suspect, ["book"] * 120, control, works

    for selection in ("whole-suspect", "common-size"):
        rows.append(
            _verdict_rate(
                f"power: a book of 120 passages trained on (+0.3 SD) vs 30 works of 3-8 passages ({selection})",
                reps // 2,
                lambda rng: long_book(rng, 0.3),
                kind="power",
                nominal="higher is better",
                passage_selection=selection,
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
    return rows


def thresholds(reps: int) -> list[dict[str, Any]]:
    """A 1% threshold from N(0, 1) controls: how often its exact realised FPR exceeds 1% (calibration alone, so
    thousands of draws take seconds)."""
    from scipy.stats import norm

    from llm_mia.stats.verdicts import FprCalibrator

    rows = []
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
    from llm_mia.stats.metrics import max_auroc_permutation_test
    from llm_mia.stats.verdicts import MEMBER, FprCalibrator

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


# ------------------------------------------------------------------------------------------------ real text

REAL_SCORERS = ("loss", "min_k", "min_k_plus_plus")
STATISTICS = ("scores", "reference-gap")
PASSAGE_TOKENS = 32


def _gpt2_models(size: str = "full") -> tuple[Any, Any, Any, set[str]]:
    """The gpt2-wikipedia target and reference, trained here once and cached: GPT-2s trained from scratch on
    disjoint sets of Wikipedia lead summaries (512 each at the full size; the target reacts to the kind of text
    it was trained on); returns (config, target snapshots, reference snapshots, titles any model or the tokenizer
    saw)."""
    from llm_mia.known_split.presets import get_preset
    from llm_mia.known_split.splits import build_split
    from llm_mia.workflows.benchmark import train_models

    config = get_preset("gpt2-wikipedia", size)
    split = build_split(config.split)
    target, reference = train_models(config, split, progress=False)
    seen = {d.id for part in ("member", "reference", "tokenizer") for d in split.parts[part]}
    return config, target, reference, seen


def _settings(target: Path, reference: Path | None, statistic: str, scratch: Path) -> Any:
    from llm_mia.backends.loading import ModelSettings
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.scoring.settings import ScoringSettings
    from llm_mia.workflows.dataset import DatasetTestSettings

    return DatasetTestSettings(
        scoring=ScoringSettings(
            models=ModelSettings(
                model=str(target), reference=None if reference is None else str(reference), device="cpu"
            ),
            scorers=REAL_SCORERS,
            extraction=ExtractionSettings(batch_size=32, progress=False),
            cache=scratch / "stats.sqlite",
        ),
        suspect_works="one",
        control_works="group",
        passage_tokens=PASSAGE_TOKENS,
        splits=5,
        statistic=statistic,
    )


def _write_works(directory: Path, suspect: Any, controls: Any) -> tuple[Path, Path]:
    """suspect.jsonl (the suspect work's texts) and control.jsonl (every control work's texts, its name as group)."""
    directory.mkdir(parents=True, exist_ok=True)
    suspect_path, control_path = directory / "suspect.jsonl", directory / "control.jsonl"
    suspect_path.write_text(
        "".join(json.dumps({"id": f"s{i}", "text": t}) + "\n" for i, t in enumerate(suspect[1])), encoding="utf-8"
    )
    control_path.write_text(
        "".join(
            json.dumps({"id": f"c{j}-{i}", "text": t, "group": name}) + "\n"
            for j, (name, texts) in enumerate(controls)
            for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    return suspect_path, control_path


def _verdict(suspect: Path, control: Path, settings: Any, models: Any, tokenizer: Any) -> dict[str, Any]:
    from llm_mia.workflows.dataset import score_and_test
    from llm_mia.workflows.dataset_inputs import cut_inputs

    report = score_and_test(cut_inputs(suspect, control, settings, tokenizer=tokenizer), settings, models=models)
    result = report.result
    return {
        "verdict": result.verdict,
        "withheld_by": [s.name for s in result.withholding],
        "p": result.p_value,
        "design": result.design,
        "suspect_share": None if result.work_test is None else result.work_test.suspect_share,
    }


def _outcome_row(name: str, statistic: str, outcomes: list[dict[str, Any]], *, kind: str) -> dict[str, Any]:
    from collections import Counter

    consistent = sum(o["verdict"] == "consistent" for o in outcomes)
    row = rate_row(f"{name} [{statistic}]", consistent, len(outcomes), kind=kind, nominal=f"<= {ALPHA}")
    row["verdicts"] = dict(Counter(o["verdict"] for o in outcomes))
    row["withheld_by"] = dict(Counter(n for o in outcomes for n in o["withheld_by"]))
    row["raw_p_at_most_alpha"] = sum(o["p"] <= ALPHA for o in outcomes)
    return row


def real(
    reps: int, scratch: Path, designs: list[str], *, size: str = "full", max_words: int = 1500
) -> list[dict[str, Any]]:
    """Real-text null designs (``llm_mia.io.real_works``) through ``llm_mia.workflows.dataset``, with the
    gpt2-wikipedia target after its last epoch, under both statistics (the reference-gap one with the recipe's
    reference model, trained the same way on other summaries: it reacts to era and genre as the target does)."""
    from llm_mia.backends.loading import load_models
    from llm_mia.io.real_works import EXCHANGEABLE, draw_works
    from llm_mia.workflows.dataset_inputs import cutting_tokenizer

    config, target, reference, seen = _gpt2_models(size)
    epoch = max(config.training.epochs)
    rows = []
    for statistic in STATISTICS:
        settings = _settings(
            target.snapshots[epoch], reference.snapshots[epoch] if statistic != "scores" else None, statistic, scratch
        )
        models = load_models(settings.scoring.models)
        tokenizer = cutting_tokenizer(settings, models)
        for design in designs:
            outcomes, started = [], time.perf_counter()
            for rep in range(reps):
                rng = np.random.default_rng([rep, 7])
                draw = draw_works(design, rng, exclude=frozenset(seen), max_words=max_words)
                paths = _write_works(scratch / "real" / f"{design}-{rep}", draw.suspect, draw.controls)
                outcomes.append(_verdict(*paths, settings, models, tokenizer))
            kind = "false positive" if design in EXCHANGEABLE else "false positive (differs in kind)"
            row = _outcome_row(f"real text, {design}, 1 unseen work vs 30", statistic, outcomes, kind=kind)
            row["seconds"] = round(time.perf_counter() - started)
            print_row(row)
            print(
                f"      verdicts {row['verdicts']}; withheld by {row['withheld_by']}; raw p <= {ALPHA}: "
                f"{row['raw_p_at_most_alpha']}/{reps}",
                flush=True,
            )
            rows.append(row)
    return rows


def power(reps: int, scratch: Path, controls: list[int], epochs: list[int]) -> list[dict[str, Any]]:
    """One trained work (8 member summaries of the gpt2-wikipedia target) against m control works (8 unseen
    summaries each, same length window), per snapshot epoch, under both statistics (the unseen case is the
    ``real`` part's exchangeable-wikipedia design)."""
    from llm_mia.backends.loading import load_models
    from llm_mia.io.corpora import wikipedia_summaries
    from llm_mia.workflows.dataset_inputs import cutting_tokenizer

    config, target, reference, seen = _gpt2_models()
    from llm_mia.known_split.splits import build_split

    split = build_split(config.split)
    members = [d.text for d in split.members]
    words = (config.split.min_words, config.split.max_words)
    unseen = [
        t for title, t in wikipedia_summaries().items() if title not in seen and words[0] <= len(t.split()) <= words[1]
    ]
    group, rows = 8, []
    for epoch in epochs:
        for statistic in STATISTICS:
            settings = _settings(
                target.snapshots[epoch],
                reference.snapshots[epoch] if statistic != "scores" else None,
                statistic,
                scratch,
            )
            models = load_models(settings.scoring.models)
            tokenizer = cutting_tokenizer(settings, models)
            for m in controls:
                for trained in (True,):
                    outcomes = []
                    for rep in range(reps):
                        rng = np.random.default_rng([rep, m, 11])
                        picked = rng.choice(len(unseen), size=group * (m + 1), replace=False)
                        texts = [unseen[i] for i in picked]
                        suspect_texts = (
                            tuple(members[i] for i in rng.choice(len(members), size=group, replace=False))
                            if trained
                            else tuple(texts[m * group :])
                        )
                        works = [(f"control {j}", tuple(texts[j * group : (j + 1) * group])) for j in range(m)]
                        paths = _write_works(
                            scratch / "power" / f"{epoch}-{m}-{int(trained)}-{rep}", ("suspect", suspect_texts), works
                        )
                        outcomes.append(_verdict(*paths, settings, models, tokenizer))
                    what = "trained work (8 members)" if trained else "unseen work (8 summaries)"
                    row = _outcome_row(
                        f"GPT-2 {epoch} epoch(s), {what} vs {m} control works",
                        statistic,
                        outcomes,
                        kind="power" if trained else "false positive",
                    )
                    row.update({"epoch": epoch, "controls": m, "trained": trained, "statistic": statistic})
                    print_row(row)
                    rows.append(row)
    return rows


def write_power_table(path: Path, rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The power rows ``llm-mia plan`` prints (``llm_mia.stats.work_test_power``), with the recipe and the command."""
    table = {
        "recipe": "GPT-2 (4 layers, 256 dims) trained from scratch on 512 Wikipedia lead summaries; one work of 8 "
        "member summaries, control works of 8 unseen summaries, 32-token passages",
        "command": "python benchmarks/false_positives.py --parts power "
        f"--power-reps {args.power_reps} --controls {' '.join(map(str, args.controls))} "
        f"--epochs {' '.join(map(str, args.epochs))} --threads 1",
        "rows": [
            {key: row[key] for key in ("epoch", "controls", "statistic", "trained", "hits", "reps")} for row in rows
        ],
    }
    path.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    from llm_mia.io.real_works import DESIGNS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to run")
    parser.add_argument("--reps", type=int, default=400, help="repetitions of each simulated design (400)")
    parser.add_argument("--real-reps", type=int, default=40, help="draws of each real-text design (40)")
    parser.add_argument(
        "--designs",
        nargs="+",
        choices=DESIGNS,
        default=[d for d in DESIGNS if d != "era-wikimia-single"],  # one 128-word article is too short to test
        help="real-text designs (default: all but era-wikimia-single, whose single article gives too few passages)",
    )
    parser.add_argument("--power-reps", type=int, default=12, help="draws of each power cell (12)")
    parser.add_argument("--controls", nargs="+", type=int, default=[19, 49, 99], help="control works (power)")
    parser.add_argument("--epochs", nargs="+", type=int, default=[1, 2, 4], help="target snapshots (power)")
    parser.add_argument("--scratch", default="false-positives", help="directory for inputs and the stats cache")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", help="write every row to this file")
    parser.add_argument("--power-table", help="write the power rows for `llm-mia plan` to this file")
    args = parser.parse_args(argv)
    from llm_mia.known_split.training_loop import torch_threads

    started = time.perf_counter()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"settings": vars(args), "alpha": ALPHA}
    with torch_threads(args.threads):
        if "simulation" in args.parts:
            print(f"simulation ({args.reps} repetitions per design; power rows {args.reps // 2}):")
            results["simulation"] = simulation(args.reps)
        if "thresholds" in args.parts:
            print(f"thresholds ({args.reps} draws per design):")
            results["thresholds"] = thresholds(args.reps)
        if "grouped" in args.parts:
            print(f"documents that share a work ({args.reps} repetitions per design):")
            results["grouped"] = grouped(args.reps)
        if "real" in args.parts:
            print(f"real text ({args.real_reps} draws per design and statistic):")
            results["real"] = real(args.real_reps, scratch, args.designs)
        if "power" in args.parts:
            print(f"power ({args.power_reps} draws per cell):")
            results["power"] = power(args.power_reps, scratch, args.controls, args.epochs)
            if args.power_table:
                write_power_table(Path(args.power_table), results["power"], args)
    results["seconds"] = round(time.perf_counter() - started)
    print(f"total {results['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
