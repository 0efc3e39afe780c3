"""Known-split ground truth: member / non-member splits of real text, and models trained on the members.

A benchmark needs ground truth that public sets cannot give offline (and that the popular ones get wrong through
distribution shift). This package makes it: a random split of one collection has no shift by construction, and a
model trained or fine-tuned here on one part of it has seen exactly that part.

- :mod:`llm_mia.known_split.splits`: corpora (Wikipedia summaries, Python documentation, Debian changelogs), cleaning,
  exact and 13-gram near-duplicate removal, seeded member / non-member / calibration / reference splits with a
  manifest (per-document SHA-256 and split).
- :mod:`llm_mia.known_split.training`: seeded, deterministic CPU training: fine-tune SmolLM2-135M, or train a
  GPT-2-architecture model from scratch with its own byte-level BPE (:mod:`~llm_mia.known_split.gpt2`), both with
  one loop (:mod:`~llm_mia.known_split.training_loop`) and settings (:mod:`~llm_mia.known_split.training_config`);
  trained models are cached with their config, seed, data manifest and file hashes
  (:mod:`~llm_mia.known_split.model_cache`).
- :mod:`llm_mia.known_split.presets`: the named benchmarks at each size.

A preset run end to end (split, train, score every scorer, evaluate) is a workflow:
:func:`llm_mia.workflows.benchmark.run_benchmark`, its report :mod:`llm_mia.workflows.benchmark_report`.

Heavy dependencies (torch, transformers, tokenizers) are imported inside the functions that need them.
"""

from llm_mia.known_split.gpt2 import train_tokenizer
from llm_mia.known_split.model_cache import TrainedModels
from llm_mia.known_split.presets import PRESETS, BenchmarkConfig, get_preset
from llm_mia.known_split.splits import (
    CORPORA,
    BenchmarkSplit,
    SplitConfig,
    build_split,
    clean_text,
    deduplicate,
    draw_split,
    load_corpus,
)
from llm_mia.known_split.training import fine_tune, train_from_scratch
from llm_mia.known_split.training_config import Gpt2Architecture, TrainingConfig

__all__ = [
    "CORPORA",
    "PRESETS",
    "BenchmarkConfig",
    "BenchmarkSplit",
    "Gpt2Architecture",
    "SplitConfig",
    "TrainedModels",
    "TrainingConfig",
    "build_split",
    "clean_text",
    "deduplicate",
    "draw_split",
    "fine_tune",
    "get_preset",
    "load_corpus",
    "train_from_scratch",
    "train_tokenizer",
]
