"""Training a population of shadow models (and one target) on random halves of a population of documents.

The population is drawn from a known-split benchmark's corpus (its cleaning, length window and near-duplicate
removal), seeded: ``population`` documents the models train on or not, ``z_documents`` that no model trains on
(RMIA's population z), and, for the from-scratch recipe, the benchmark's tokenizer split (the shared BPE is
trained on it, disjoint from everything scored). Model i trains on the documents its inclusion column marks
(:func:`llm_mia.shadow.inclusion.inclusion_matrix`), with the recipe's training settings, its own seed
(``seed * 1000 + i + 1``) and only the final epoch saved; the target trains on its own random half
(:func:`llm_mia.shadow.inclusion.target_half`, seed ``seed * 1000``), which no attack ever sees.

Each model is one cached training run (:func:`llm_mia.known_split.model_cache.cached_training`: named by the hash of
its recipe, data and seed; written to a staging directory and renamed into place when complete), so a killed run
resumes with the next untrained model and a finished model is never trained twice. With ``processes > 1`` the
untrained models are trained that many at a time, one per process (each with ``threads`` torch threads).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from llm_mia.engine.threads import AUTO, auto_threads, parse_threads
from llm_mia.errors import InputError
from llm_mia.io.documents import Document
from llm_mia.known_split.presets import BenchmarkConfig, get_preset
from llm_mia.shadow.inclusion import inclusion_matrix, target_half

logger = logging.getLogger(__name__)

MANIFEST = "shadow.json"
POPULATION = "population.jsonl"
INCLUSION = "inclusion.csv"
TARGET = "target"
DEFAULT_SIZES = {"ci": (96, 24), "full": (2000, 250)}  # (population, z documents) per preset size


@dataclass(frozen=True)
class ShadowSettings:
    """What population of models to train. ``recipe``: a known-split benchmark (``llm-mia benchmark --list``);
    ``size``: its ``ci`` or ``full`` training settings and model size. ``models``: K shadow models.
    ``population`` / ``z_documents``: None takes the size's default (ci 96 / 24, full 2000 / 250). ``epochs``:
    None takes the recipe's last snapshot epoch. ``processes``: models trained at once; ``threads``: torch threads
    per process: a number, ``"auto"`` (the cores other work leaves free, divided among the processes) or None (all
    cores divided among the processes)."""

    recipe: str = "gpt2-wikipedia"
    size: str = "ci"
    models: int = 4
    population: int | None = None
    z_documents: int | None = None
    epochs: int | None = None
    seed: int = 0
    processes: int = 1
    threads: int | str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.models < 1:
            raise InputError(f"--models must be at least 1, got {self.models}")
        if self.processes < 1:
            raise InputError(f"--processes must be at least 1, got {self.processes}")
        object.__setattr__(self, "threads", parse_threads(self.threads))

    def benchmark(self) -> BenchmarkConfig:
        config = get_preset(self.recipe, self.size)
        epochs = (self.epochs,) if self.epochs is not None else (max(config.training.epochs),)
        return dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=epochs))

    def sizes(self) -> tuple[int, int]:
        population, z = DEFAULT_SIZES.get(self.size, DEFAULT_SIZES["ci"])
        return self.population or population, self.z_documents if self.z_documents is not None else z

    def identity(self) -> dict[str, Any]:
        """What decides the population, the inclusion matrix and the models (not processes or threads)."""
        population, z = self.sizes()
        return {
            "recipe": self.recipe,
            "size": self.size,
            "models": self.models,
            "population": population,
            "z_documents": z,
            "training": self.benchmark().training.to_dict(),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class ShadowPopulation:
    """A trained population, as ``DIR`` holds it: documents, inclusion matrix, target half, model directories."""

    directory: Path
    manifest: dict[str, Any]
    population: tuple[Document, ...]
    z_documents: tuple[Document, ...]
    inclusion: np.ndarray
    target_members: np.ndarray

    @property
    def model_dirs(self) -> dict[str, Path]:
        return {name: Path(path) for name, path in self.manifest["model_dirs"].items()}

    @property
    def shadow_names(self) -> list[str]:
        return [f"shadow-{i}" for i in range(self.inclusion.shape[1])]


def draw_population(settings: ShadowSettings) -> tuple[list[Document], list[Document], list[str]]:
    """(population, z documents, tokenizer texts) drawn from the recipe's corpus, seeded."""
    from llm_mia.known_split.splits import draw_split, prepare_pool

    config = settings.benchmark()
    population, z = settings.sizes()
    pool, _ = prepare_pool(config.split)
    tokenizer = config.split.tokenizer if config.recipe == "from-scratch" else 0
    # slots drawn in this order: population, tokenizer text, z; so more or fewer z documents change neither the
    # population nor the tokenizer, and every model trained before is re-used
    parts = draw_split(pool, members=population, nonmembers=max(tokenizer, 1), calibration=z, seed=settings.seed)
    unlabel = [dataclasses.replace(d, label=None) for d in parts["member"]]
    z_docs = [dataclasses.replace(d, label=None) for d in parts["calibration"]]
    return unlabel, z_docs, [d.text for d in parts["nonmember"]][:tokenizer]


class _Placement(TypedDict):
    """Where every model of a population trains: the device, the stats cache's root and the CPU threads."""

    device: str
    cache_root: Path | None
    threads: int | None


def _train_one(
    config: BenchmarkConfig,
    documents: Sequence[Document],
    tokenizer_texts: Sequence[str],
    seed: int,
    *,
    device: str,
    cache_root: Path | None,
    threads: int | None,
    progress: bool,
) -> str:
    """Train (or re-use) one model; returns its final snapshot directory. Runs in a worker process too."""
    from llm_mia.known_split.training import fine_tune, train_from_scratch
    from llm_mia.known_split.training_loop import torch_threads

    training = dataclasses.replace(config.training, seed=seed)
    with torch_threads(threads):
        if config.recipe == "fine-tune":
            trained = fine_tune(
                documents, config=training, base=config.base_model, device=device, cache_root=cache_root,
                progress=progress,
            )  # fmt: skip
        else:
            assert config.architecture is not None
            trained = train_from_scratch(
                documents, tokenizer_texts=tokenizer_texts, config=training, architecture=config.architecture,
                role="shadow", device=device, cache_root=cache_root, progress=progress,
            )  # fmt: skip
    return str(trained.snapshots[max(training.epochs)])


def train_shadow_models(
    settings: ShadowSettings,
    output: str | Path,
    *,
    cache_root: Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = logger.info,
) -> ShadowPopulation:
    """Draw the population, save it and the inclusion matrix to ``output``, and train every model not yet trained
    (module doc). Returns the population as :func:`load_population` reads it."""
    from llm_mia.known_split.training_loop import device_for_training

    settings = dataclasses.replace(settings, device=device_for_training(settings.device))  # auto: a real device
    directory = Path(output)
    manifest_path = directory / MANIFEST
    identity = settings.identity()
    existing = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    if existing and existing.get("settings") != identity:
        raise InputError(
            f"{directory} holds a shadow population with other settings ({existing.get('settings')}); "
            "give another --output, or the same settings to resume"
        )
    directory.mkdir(parents=True, exist_ok=True)
    config = settings.benchmark()
    population, z_docs, tokenizer_texts = draw_population(settings)
    inclusion = inclusion_matrix(len(population), settings.models, seed=settings.seed)
    members = target_half(len(population), seed=settings.seed)
    _write_population(directory, population, z_docs, inclusion, members)
    manifest = {
        "format": "llm-mia shadow population",
        "version": 1,
        "settings": identity,
        "benchmark": config.to_dict(),
        "inclusion": "complementary pairs: model 2j trains on a random half, model 2j + 1 on the rest, so every "
        "document is IN for exactly K/2 of the first K models for every even K; the target's half is drawn "
        "independently and never shown to an attack",
        "model_dirs": existing.get("model_dirs", {}),
    }
    jobs = {f"shadow-{i}": (inclusion[:, i], settings.seed * 1000 + i + 1) for i in range(settings.models)}
    jobs[TARGET] = (members, settings.seed * 1000)
    if isinstance(settings.threads, int):
        threads = settings.threads
    else:
        free = auto_threads() if settings.threads == AUTO else (os.cpu_count() or 1)
        threads = max(1, free // settings.processes)
    common: _Placement = {"device": settings.device, "cache_root": cache_root, "threads": threads}

    def record(name: str, path: str) -> None:
        manifest["model_dirs"][name] = path
        manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        echo(f"{name}: {path}")

    manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    todo = [name for name in jobs if not Path(manifest["model_dirs"].get(name, "/nonexistent")).is_dir()]
    echo(
        f"{settings.models} shadow models and a target on {len(population)} documents "
        f"({len(todo)} to train, {len(jobs) - len(todo)} already trained)"
    )
    training_sets = {name: [d for d, keep in zip(population, jobs[name][0], strict=True) if keep] for name in todo}
    if settings.processes == 1 or len(todo) <= 1:
        for name in todo:
            trained = _train_one(
                config, training_sets[name], tokenizer_texts, jobs[name][1], progress=progress, **common
            )
            record(name, trained)
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=settings.processes, mp_context=context) as pool:
            futures = {
                name: pool.submit(
                    _train_one, config, training_sets[name], tokenizer_texts, jobs[name][1], progress=False, **common
                )
                for name in todo
            }
            for name, future in futures.items():
                record(name, future.result())
    return load_population(directory)


def _write_population(
    directory: Path,
    population: Sequence[Document],
    z_docs: Sequence[Document],
    inclusion: np.ndarray,
    members: np.ndarray,
) -> None:
    lines = [
        json.dumps({"id": d.id, "text": d.text, "role": role}, ensure_ascii=False)
        for role, documents in (("population", population), ("z", z_docs))
        for d in documents
    ]
    (directory / POPULATION).write_text("\n".join(lines) + "\n", encoding="utf-8")
    header = ["id", *[f"shadow-{i}" for i in range(inclusion.shape[1])], TARGET]
    with (directory / INCLUSION).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, d in enumerate(population):
            writer.writerow([d.id, *inclusion[i].astype(int).tolist(), int(members[i])])


def load_population(directory: str | Path) -> ShadowPopulation:
    """Read a population ``train_shadow_models`` wrote; refuses an inclusion matrix that does not match it."""
    from llm_mia.shadow.inclusion import check_inclusion

    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{directory}: no {MANIFEST}; run `llm-mia shadow train --output {directory}` first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    population: list[Document] = []
    z_docs: list[Document] = []
    population_path = directory / POPULATION
    for number, line in enumerate(population_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            document = Document(id=row["id"], text=row["text"])
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"{population_path}, line {number}: not a population row ({error})") from None
        (population if row.get("role") == "population" else z_docs).append(document)
    inclusion_path = directory / INCLUSION
    with inclusion_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    ids, matrix = [], []
    for number, cells in enumerate(rows[1:], 2):
        if len(cells) != len(header) or any(cell not in ("0", "1") for cell in cells[1:]):
            raise InputError(
                f"{inclusion_path}, line {number}: expected an id and {len(header) - 1} cells of 0 or 1; "
                "the file is damaged: run `llm-mia shadow train` again with the same settings to rewrite it"
            )
        ids.append(cells[0])
        matrix.append([cell == "1" for cell in cells[1:]])
    table = np.asarray(matrix, dtype=bool).reshape(len(ids), len(header) - 1)
    check_inclusion(table, ids, [d.id for d in population])
    return ShadowPopulation(
        directory=directory,
        manifest=manifest,
        population=tuple(population),
        z_documents=tuple(z_docs),
        inclusion=table[:, :-1],
        target_members=table[:, -1],
    )
