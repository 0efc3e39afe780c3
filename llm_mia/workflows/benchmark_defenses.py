"""Defenses measured on a known-split benchmark: one row per defense setting, attack strength beside utility.

For each setting (``none``, a training-time defense from ``llm_mia.defenses.training`` or an inference-time one
from ``llm_mia.defenses.output``) the benchmark's target model is trained (cached per full config: a training
defense is a new training run, an output defense re-uses the undefended model), its last snapshot is scored by
the chosen attacks (default loss, Min-K%++ and the reference attack; the reference model is the attacker's and
is never defended), and each attack's AUROC (DeLong interval) and TPR at 1% FPR (with the number of non-members
it rests on) are reported beside:

- **utility**: perplexity exp(mean token NLL) on the benchmark's held-out non-members (same distribution as the
  members) and on the packaged 16-text sample (``llm_mia/data/sample.jsonl``, general text), of the distribution
  the deployment generates from. A temperature changes that distribution; noise, rounding and top-k change only
  what is returned, not what is generated, so their utility is the undefended model's (stated in the row).
- for DP-SGD rows, the accountant's epsilon (Opacus RDP, at the run's delta) and the empirical lower bound from
  the loss attack (``llm_mia.defenses.audit``); a lower bound above the accountant's epsilon is reported as a
  failure of the run, never silently.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from llm_mia.errors import LlmMiaError

logger = logging.getLogger(__name__)

DEFAULT_ATTACKS = ("loss", "min_k_plus_plus", "reference")
REPORT_FPR = 0.01


@dataclass(frozen=True)
class DefenseSetting:
    """One row's defense: its spec as given, and the parsed training-time or inference-time defense."""

    spec: str
    training: Any = None  # TrainingDefense
    output: Any = None  # OutputDefense

    @property
    def kind(self) -> str:
        if self.training is not None:
            return "training"
        return "inference" if self.output is not None else "none"


def parse_setting(spec: str) -> DefenseSetting:
    """``none``, a training-time spec (dp, weight_decay, dropout, early_stopping) or an inference-time one
    (temperature, noise, round, top_k); anything else is refused with both lists."""
    from llm_mia.defenses import output, training

    kind = spec.strip().partition(":")[0].strip().replace("-", "_")
    if kind == "none":
        return DefenseSetting("none")
    if kind in training.KINDS:
        return DefenseSetting(spec.strip(), training=training.parse_training_defense(spec))
    if kind in output.KINDS:
        return DefenseSetting(spec.strip(), output=output.parse_defense(spec))
    raise LlmMiaError(
        f"defense {spec!r}: unknown; training-time: {', '.join(training.KINDS)}; inference-time: "
        f"{', '.join(output.KINDS)}; or none"
    )


@dataclass
class DefenseRow:
    """One defense setting's numbers (see the module docstring)."""

    setting: DefenseSetting
    epoch: int
    attacks: dict[str, dict[str, Any]]
    utility: dict[str, Any]
    privacy: dict[str, Any] | None = None
    audit: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "defense": self.setting.spec,
            "kind": self.setting.kind,
            "epoch": self.epoch,
            "attacks": self.attacks,
            "utility": self.utility,
            "privacy": self.privacy,
            "audit": self.audit,
            "training": self.training,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class DefenseResult:
    config: Any
    rows: list[DefenseRow] = field(default_factory=list)
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    base_utility: dict[str, float] | None = None  # the pretrained model before fine-tuning (fine-tune recipes)

    def failures(self) -> list[str]:
        """Rows whose audit lower bound exceeds the accountant's epsilon: something is broken there."""
        return [
            row.setting.spec
            for row in self.rows
            if row.audit and row.privacy and row.audit["epsilon_lower_bound"] > row.privacy["epsilon"] + 1e-9
        ]

    @property
    def record(self) -> dict[str, Any]:
        """What ``defenses.json`` holds: the benchmark, the command that reproduces it, every row's numbers."""
        return defense_record(self)

    def summary_lines(self) -> list[str]:
        """The defense table, then a BROKEN line for every setting whose audit contradicts its accountant."""
        return [
            *markdown_table(self),
            *(f"BROKEN: {spec}: the audit's lower bound exceeds the accountant's epsilon" for spec in self.failures()),
        ]

    def write(self, directory: str | Path) -> list[Path]:
        """defenses.md, defenses.json and privacy_utility.png into ``directory`` (:func:`write_defense_report`)."""
        return write_defense_report(self, Path(directory))


def perplexity(stats: Sequence[Any]) -> float:
    """exp(token-weighted mean NLL) over the documents' scored tokens.

    >>> import numpy as np
    >>> round(perplexity([type("S", (), {"ok": True, "logprob": np.log([0.5, 0.25])})()]), 4)  # exp(1.5 ln 2)
    2.8284
    """
    import numpy as np

    values = [np.asarray(s.logprob, dtype=np.float64) for s in stats if s.ok and len(s.logprob)]
    if not values:
        return math.nan
    return float(np.exp(-np.concatenate(values).mean()))


def run_defense_benchmark(
    config: Any,
    specs: Sequence[str],
    *,
    attacks: Sequence[str] = DEFAULT_ATTACKS,
    device: str = "cpu",
    cache_root: Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    threads: int | str | None = None,
    echo: Callable[[str], None] = logger.info,
) -> DefenseResult:
    """Every setting in ``specs`` on ``config``'s benchmark (all parsed before anything trains); see the module
    docstring for what each row holds. ``threads``: as for :func:`llm_mia.workflows.benchmark.run_benchmark`."""
    from llm_mia.known_split.training_loop import torch_threads
    from llm_mia.workflows.benchmark import run_threads

    settings = [parse_setting(spec) for spec in specs]
    if not settings:
        raise LlmMiaError("name at least one defense setting (e.g. none temperature:t=2 dp:epsilon=8)")
    with torch_threads(run_threads(threads, echo)):
        return _run(config, settings, tuple(attacks), device, cache_root, use_cache, progress, echo)


def _run(
    config: Any,
    settings: list[DefenseSetting],
    attacks: tuple[str, ...],
    device: str,
    cache_root: Path | None,
    use_cache: bool,
    progress: bool,
    echo: Callable[[str], None],
) -> DefenseResult:
    import pandas as pd

    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.defenses.audit import audit_scores
    from llm_mia.defenses.output import defended
    from llm_mia.engine.extract import extract
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.io.documents import read_documents
    from llm_mia.known_split.splits import build_split
    from llm_mia.scoring.scorers import parse_scorer_specs
    from llm_mia.workflows.benchmark import score_snapshot, train_models
    from llm_mia.workflows.evaluate import EvaluationSettings, evaluate_table

    split = build_split(config.split, cache_root=cache_root, use_cache=use_cache)
    epoch = max(config.training.epochs)
    calls = parse_scorer_specs(list(attacks), has_reference=True)
    documents = split.evaluation_documents()
    nonmember_texts = [d.text for d in split.nonmembers]
    general_texts = [d.text for d in read_documents(str(resources.files("llm_mia") / "data" / "sample.jsonl"))]
    quiet = ExtractionSettings(batch_size=config.scoring_batch_size, progress=progress)
    evaluation_settings = EvaluationSettings(
        fprs=(REPORT_FPR,),
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        seed=config.split.seed,
        blind=False,
    )
    base = load_model(ModelSpec(name=config.base_model, device=device)) if config.recipe == "fine-tune" else None
    reference_stats = None
    result = DefenseResult(config=config, attacks=attacks)
    if base is not None:  # what fine-tuning starts from: a defense that trains nothing leaves this perplexity
        result.base_utility = {
            "heldout_perplexity": perplexity(extract(nonmember_texts, base, quiet)),
            "general_perplexity": perplexity(extract(general_texts, base, quiet)),
        }
    for setting in settings:
        started = time.perf_counter()
        training = dataclasses.replace(config.training, defense=setting.training)
        echo(f"defense {setting.spec}: training ({'cached runs are re-used' if use_cache else 'no cache'})")
        target, reference = train_models(
            dataclasses.replace(config, training=training),
            split,
            device=device,
            cache_root=cache_root,
            use_cache=use_cache,
            progress=progress,
        )
        model = load_model(ModelSpec(name=str(target.snapshots[epoch]), device=device))
        deployed = defended(model, setting.output)
        reference_model = None  # the attacker's model is never defended: its pass is the same for every setting
        if reference_stats is None:  # fine-tuning trains no reference model: its base model is the reference
            snapshot = None if reference is None else str(reference.snapshots[epoch])
            reference_model = base if snapshot is None else load_model(ModelSpec(name=snapshot, device=device))
        echo(f"defense {setting.spec}: scoring {len(documents)} documents ({', '.join(attacks)})")
        rows, _, reference_stats, _ = score_snapshot(
            documents,
            target=deployed,
            reference=reference_model,
            reference_stats=reference_stats,
            batch_size=config.scoring_batch_size,
            progress=progress,
            calls=calls,
        )
        frame = pd.DataFrame(rows)
        evaluation = evaluate_table(frame, settings=evaluation_settings)
        generating = deployed if setting.output is not None and setting.output.kind == "temperature" else model
        utility = {
            "heldout_perplexity": perplexity(extract(nonmember_texts, generating, quiet)),
            "general_perplexity": perplexity(extract(general_texts, generating, quiet)),
            "heldout_texts": len(nonmember_texts),
            "general_texts": len(general_texts),
            "note": "what the deployment generates from"
            + ("" if generating is deployed else " (this defense changes only what is returned)"),
        }
        summary: dict[str, dict[str, Any]] = {}
        for call in calls:
            evaluated = evaluation.scorers.get(call.column)
            if evaluated is None:
                summary[call.column] = {"unavailable": evaluation.skipped.get(call.column, "not scored")}
                continue
            rate = evaluated.tpr_at_fpr[REPORT_FPR]
            summary[call.column] = {
                "auroc": evaluated.auroc,
                "auroc_ci": list(evaluated.auroc_ci),
                "tpr_at_1pct_fpr": rate.tpr,
                "tpr_resolvable": rate.resolvable,
                "nonmembers": rate.n_nonmembers,
                "members": rate.n_members,
            }
        privacy = target.record.get("privacy")
        audit = None
        if privacy is not None:
            labelled = frame[frame["label"].isin([0, 1])]
            member = labelled[labelled["label"] == 1]["loss"].dropna().to_numpy()
            nonmember = labelled[labelled["label"] == 0]["loss"].dropna().to_numpy()
            audit = audit_scores(member, nonmember, delta=privacy["delta"], seed=config.split.seed)
        training_record: dict[str, Any] = {
            key: target.record[key]
            for key in ("early_stopping", "peak_rss_gib", "wall_seconds")
            if key in target.record
        }
        result.rows.append(
            DefenseRow(
                setting=setting,
                epoch=epoch,
                attacks=summary,
                utility=utility,
                privacy=privacy,
                audit=audit,
                training=training_record,
                seconds=time.perf_counter() - started,
            )
        )
        echo(format_row(result.rows[-1], attacks))
    return result


def format_row(row: DefenseRow, attacks: Sequence[str]) -> str:
    """One line: the setting, utility, each attack's AUROC and TPR@1%FPR, and epsilon where there is one."""
    parts = [f"{row.setting.spec}: held-out perplexity {row.utility['heldout_perplexity']:.2f}"]
    for attack in attacks:
        entry = row.attacks.get(attack, {})
        if "auroc" in entry:
            parts.append(f"{attack} AUROC {entry['auroc']:.3f}")
        else:
            parts.append(f"{attack} unavailable")
    if row.privacy and row.audit is not None:  # a model with a privacy budget is always audited
        parts.append(f"epsilon {row.privacy['epsilon']:.2f} (audit >= {row.audit['epsilon_lower_bound']:.2f})")
    return "; ".join(parts)


def markdown_table(result: DefenseResult) -> list[str]:
    """The defense table (one row per setting) in Markdown, with how to read it."""
    attacks = result.attacks
    header = ["defense", "held-out ppl", "general ppl"]
    for attack in attacks:
        header += [f"{attack} AUROC [95% CI]", f"{attack} TPR@1%FPR"]
    header += ["accountant epsilon", "audit epsilon >="]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.rows:
        cells = [
            f"`{row.setting.spec}`",
            f"{row.utility['heldout_perplexity']:.2f}",
            f"{row.utility['general_perplexity']:.2f}",
        ]
        for attack in attacks:
            entry = row.attacks.get(attack, {})
            if "auroc" not in entry:
                cells += ["unavailable", ""]
                continue
            low, high = entry["auroc_ci"]
            cells.append(f"{entry['auroc']:.3f} [{low:.3f}, {high:.3f}]")
            star = "" if entry["tpr_resolvable"] else "*"
            cells.append(f"{entry['tpr_at_1pct_fpr']:.3f} (n={entry['nonmembers']}){star}")
        if row.privacy and row.audit is not None:  # a model with a privacy budget is always audited
            cells += [
                f"{row.privacy['epsilon']:.2f} (delta {row.privacy['delta']:.2g})",
                f"{row.audit['epsilon_lower_bound']:.2f}",
            ]
        else:
            cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def defense_command(result: DefenseResult) -> str:
    """The command that reproduces ``result``."""
    from llm_mia.workflows.benchmark_report import command_line

    command = command_line(result.config, defenses=[row.setting.spec for row in result.rows])
    if tuple(result.attacks) != DEFAULT_ATTACKS:
        command += " --attacks " + " ".join(result.attacks)
    return command


def defense_record(result: DefenseResult) -> dict[str, Any]:
    """Every number of a defense benchmark, as ``defenses.json`` holds it."""
    return {
        "benchmark": result.config.name,
        "size": result.config.size,
        "command": defense_command(result),
        "base_utility": result.base_utility,
        "rows": [r.to_dict() for r in result.rows],
    }


def write_defense_report(result: DefenseResult, directory: Path) -> list[Path]:
    """defenses.md (table), defenses.json (every number) and privacy_utility.png (AUROC against held-out
    perplexity, one point per setting and attack); returns the files written."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    config = result.config
    command = defense_command(result)
    lines = [
        f"# Defenses on {config.name} ({config.size}), epoch {max(config.training.epochs)}",
        "",
        f"- command: `{command}`",
        f"- wall time: {sum(row.seconds for row in result.rows):.0f} s (training and scoring, every setting)",
        "",
        *markdown_table(result),
        "",
        "ppl: perplexity of what the deployment generates from (noise, rounding and top-k change only what is "
        "returned); AUROC intervals DeLong; TPR@1%FPR with the non-members it rests on, `*` where fewer than 20 "
        "false positives are allowed (not resolved); epsilon: Opacus RDP accountant; audit: Clopper-Pearson lower "
        "bound from the loss attack (llm_mia.defenses.audit; one training run, texts as independent trials).",
    ]
    base = result.base_utility
    if base:
        lines += [
            "",
            f"Before fine-tuning ({config.base_model}): held-out perplexity {base['heldout_perplexity']:.2f}, "
            f"general {base['general_perplexity']:.2f}.",
        ]
    failures = result.failures()
    if failures:
        lines += ["", f"**BROKEN:** audit lower bound above the accountant's epsilon for: {', '.join(failures)}"]
    (directory / "defenses.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = defense_record(result)
    (directory / "defenses.json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    plot_privacy_utility(result, directory / "privacy_utility.png")
    return [directory / "defenses.md", directory / "defenses.json", directory / "privacy_utility.png"]


def plot_privacy_utility(result: DefenseResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    markers = dict(zip(result.attacks, "osD^v", strict=False))
    for attack in result.attacks:
        points = [
            (row.utility["heldout_perplexity"], row.attacks[attack]["auroc"], row.setting.spec)
            for row in result.rows
            if "auroc" in row.attacks.get(attack, {})
        ]
        if not points:
            continue
        axis.scatter([p[0] for p in points], [p[1] for p in points], marker=markers[attack], label=attack)
        if attack == result.attacks[0]:
            for x, y, label in points:
                axis.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    axis.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    axis.set_xscale("log")
    axis.set_xlabel("held-out perplexity (lower = more useful)")
    axis.set_ylabel("attack AUROC (0.5 = chance)")
    axis.set_title(f"Privacy vs utility: {result.config.name} ({result.config.size})")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
