"""The synthetic held-out set: a generator fine-tuned on part of the suspect work completes passages of the rest.

Following Zhao et al. (2025, "Unlocking Post-hoc Dataset Inference with Synthetic Data"; reference code
sprintml/PostHocDatasetInference): the work is cut into snippets of ``snippet_words`` words (64; the reference
code cuts 32- or 64-word windows), pooled and shuffled with the seed ("segment and shuffle"), and split: the
first ``pairs`` snippets are the inference set, the rest train the generator. The generator (the packaged
SmolLM2-135M by default, any local causal LM otherwise; all weights, the toolkit's cached training recipe,
plain next-token loss on whole snippets as in the reference code, where the publication fine-tunes
Llama-3-8B with LoRA) never sees an inference snippet. Each inference snippet is cut in its generator tokens
into a prefix (the first half) and a suffix; the generator writes a suffix of exactly the real one's length
after the prefix (temperature 0.6, top-p 0.9, top-k 50, repetition penalty 1.2, as published), twice: one to
compare with the real suffix, one for the negative control (generated text against generated text). The
generator then scores every suffix, real and generated, through the toolkit's scoring path (``loss``, read as
nats per UTF-8 byte): its loss on the real suffixes, which it never saw, is the generator-quality check's
yardstick (``llm_mia.synthetic.safeguards``). The calibrated test (``llm_mia.synthetic.calibrated_test``) then
compares suffixes only.

The set is stored (JSON) with the work's SHA-256, the generator's identity (its base model, training record
key and the SHA-256 of every inference snippet it did not see), the seed and every setting: it did not exist
before it was generated, so it is unseen by construction. Refused: a work too short (``MIN_SNIPPETS`` snippets:
``MIN_PAIRS`` to test, as many to train the generator), a generator whose training data holds an inference
snippet, a model that cannot generate, and a generator that copies the work: a synthetic suffix containing a
span of ``copy_words`` generated words that is in the suspect work counts as copied, and more than
``max_copied_share`` of such suffixes refuse the set (copied text is not held out).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError, LlmMiaError
from llm_mia.io.identity import sha256_text
from llm_mia.synthetic.calibrated_test import MIN_PAIRS

FORMAT = "llm-mia synthetic set"
SIDES = ("real", "synthetic", "synthetic_control")
GENERATOR_LOSSES = "generator_nats_per_byte"
MIN_GENERATOR_SNIPPETS = 40
MIN_SNIPPETS = MIN_PAIRS + MIN_GENERATOR_SNIPPETS


@dataclass(frozen=True)
class SynthesisSettings:
    """How the synthetic set is made (module docstring). ``pairs``: inference snippets (None: half of the
    snippets, at most 2,000, the publication's size)."""

    generator: str = "smollm2-135m"
    snippet_words: int = 64
    pairs: int | None = None
    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 8
    seed: int = 0
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.2
    copy_words: int = 12
    max_copied_share: float = 0.05
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.snippet_words < 8:
            raise LlmMiaError(f"snippet_words {self.snippet_words}: need at least 8 words (a prefix and a suffix)")
        if self.pairs is not None and self.pairs < MIN_PAIRS:
            raise LlmMiaError(f"pairs {self.pairs}: the calibrated test needs at least {MIN_PAIRS}")
        if self.epochs < 1 or self.learning_rate <= 0 or self.temperature <= 0:
            raise LlmMiaError("need epochs >= 1, learning_rate > 0 and temperature > 0")


def read_work(path: str | Path) -> list[str]:
    """The suspect work's texts: a text file, a directory of text files, or JSONL / CSV / Parquet rows."""
    from llm_mia.io.documents import read_documents

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory (the suspect work)")
    return [d.text for d in read_documents(str(path)) if d.text.strip()]


def cut_snippets(texts: Sequence[str], words: int) -> list[str]:
    """Consecutive windows of ``words`` whitespace-separated words from each text (a shorter tail is dropped).

    >>> cut_snippets(["a b c d e f g", "h i j"], 3)
    ['a b c', 'd e f', 'h i j']
    """
    snippets = []
    for text in texts:
        tokens = text.split()
        snippets += [" ".join(tokens[i : i + words]) for i in range(0, len(tokens) - words + 1, words)]
    return snippets


def split_snippets(snippets: Sequence[str], settings: SynthesisSettings, source: str) -> tuple[list[str], list[str]]:
    """(inference snippets, generator-training snippets) after a seeded shuffle; refuses a work too short."""
    if len(snippets) < MIN_SNIPPETS:
        raise InputError(
            f"{source}: {len(snippets)} snippets of {settings.snippet_words} words; a synthetic control needs at "
            f"least {MIN_SNIPPETS} ({MIN_PAIRS} to test, {MIN_GENERATOR_SNIPPETS} to fine-tune the generator), about "
            f"{MIN_SNIPPETS * settings.snippet_words:,} words; the work is too short for this test (use the "
            "dataset-level test with real control works, or shorter --snippet-words)"
        )
    order = list(range(len(snippets)))
    random.Random(settings.seed).shuffle(order)
    pairs = settings.pairs or min(2000, len(snippets) // 2)
    if len(snippets) - pairs < MIN_GENERATOR_SNIPPETS:
        raise InputError(
            f"{source}: --pairs {pairs} leaves {len(snippets) - pairs} of {len(snippets)} snippets to fine-tune the "
            f"generator; it needs at least {MIN_GENERATOR_SNIPPETS}"
        )
    return [snippets[i] for i in order[:pairs]], [snippets[i] for i in order[pairs:]]


def train_generator(training: Sequence[str], settings: SynthesisSettings, *, progress: bool = True) -> Any:
    """Fine-tune the generator on the training snippets (the toolkit's cached, seeded recipe); its directory."""
    from llm_mia.backends.loading import capabilities_of
    from llm_mia.io.documents import Document
    from llm_mia.known_split.training import fine_tune
    from llm_mia.known_split.training_config import TrainingConfig

    if not capabilities_of(settings.generator).weights:
        raise LlmMiaError(
            f"--generator {settings.generator} is behind an API: the generator is fine-tuned on the suspect work, "
            "so it must be a local causal language model (a directory, a .gguf file or a packaged alias)"
        )
    config = TrainingConfig(
        epochs=(settings.epochs,),
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        max_length=4 * settings.snippet_words,
        seed=settings.seed,
    )
    documents = [Document(id=f"g{i}", text=text) for i, text in enumerate(training)]
    trained = fine_tune(documents, config=config, base=settings.generator, device=settings.device, progress=progress)
    return trained.snapshots[settings.epochs], trained.record


def check_generator_unseen(record: dict[str, Any], inference: Sequence[str]) -> None:
    """Refuse a generator whose training data holds any inference snippet (such controls are not held out)."""
    seen = {entry["sha256"] for entry in record.get("data", [])}
    if not record.get("data"):
        raise LlmMiaError("the generator has no training record listing its data; it cannot be shown unseen")
    overlap = [text for text in inference if sha256_text(text) in seen]
    if overlap:
        raise LlmMiaError(
            f"the generator was trained on {len(overlap)} of the {len(inference)} snippets it is to complete: "
            "its completions would not be held out; train it on the other snippets only"
        )


def _spans(text: str, words: int) -> set[str]:
    tokens = text.split()
    return {" ".join(tokens[i : i + words]) for i in range(len(tokens) - words + 1)}


def copied(suffixes: Sequence[str], work: Sequence[str], words: int) -> dict[int, str]:
    """The synthetic suffixes that contain a ``words``-word span of the work, every word of it generated:
    index -> the first such span. A span that starts in the prefix is not counted: the prefix is the work's own
    text, and a generator that continues it with the word the work has next predicts, it does not copy (on
    Wikipedia summaries such spans, "... received the Nobel Prize" + " in", were 5-7% of completions)."""
    index: set[str] = set()
    for text in work:
        index |= _spans(text, words)
    found = {}
    for i, suffix in enumerate(suffixes):
        shared = [span for span in sorted(_spans(suffix, words)) if span in index]
        if shared:
            found[i] = shared[0]
    return found


def _seed(settings: SynthesisSettings, snippet: str, which: int) -> int:
    digest = hashlib.sha256(f"{settings.seed}|{which}|{snippet}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def complete(inference: Sequence[str], directory: Path, settings: SynthesisSettings, progress: bool) -> list[dict]:
    """Per inference snippet: its prefix (first half of its generator tokens), real suffix, and two synthetic
    suffixes of the same length, each seeded by (seed, snippet) so one pair does not depend on the others."""
    from tqdm import tqdm

    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.engine.generation import sample_continuations

    loaded = load_model(ModelSpec(name=str(directory), device=settings.device))
    if not hasattr(loaded.model, "generate"):
        raise LlmMiaError(f"{settings.generator}: the model cannot generate text (no generate method)")
    tokenizer = loaded.tokenizer
    pairs = []
    for i, snippet in enumerate(tqdm(inference, desc="generating", unit="snippet", disable=not progress)):
        ids = tokenizer(snippet, add_special_tokens=False)["input_ids"]
        half = len(ids) // 2
        prefix, real = tokenizer.decode(ids[:half]), tokenizer.decode(ids[half:])
        draw = partial(
            sample_continuations,
            prefix,
            loaded,
            samples=1,
            max_new_tokens=len(ids) - half,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
            repetition_penalty=settings.repetition_penalty,
            exact_length=True,
        )
        synthetic, control = (draw(seed=_seed(settings, snippet, which))[0] for which in (0, 1))
        pairs.append(
            {"id": f"s{i}", "snippet_sha256": sha256_text(snippet), "prefix": prefix, "real": real}
            | {"synthetic": synthetic, "synthetic_control": control}
        )
    for pair, losses in zip(pairs, generator_losses(pairs, loaded, progress), strict=True):
        pair[GENERATOR_LOSSES] = losses
    return pairs


def generator_losses(pairs: Sequence[dict], loaded: Any, progress: bool) -> list[dict[str, float | None]]:
    """Per pair, the generator's loss on each suffix alone (as the suspect model reads them), in nats per UTF-8
    byte (``llm_mia.synthetic.safeguards.row_nats_per_byte``), through the toolkit's scoring path; None where a
    suffix got no loss."""
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.io.documents import Document
    from llm_mia.scoring.pipeline import compute_scores
    from llm_mia.scoring.settings import ScoringSettings
    from llm_mia.synthetic.safeguards import row_nats_per_byte

    documents = [Document(id=f"{side}:{p['id']}", text=p[side]) for p in pairs for side in SIDES]
    calls = ScoringSettings(scorers=("loss",), cache=False).calls
    extraction = ExtractionSettings(progress=progress)
    rows = compute_scores(documents, calls, models={"target": loaded}, settings=extraction).rows
    values = [row_nats_per_byte(row) if row["loss"] is not None else None for row in rows]
    return [dict(zip(SIDES, values[3 * i : 3 * i + 3], strict=True)) for i in range(len(pairs))]


@dataclass
class SyntheticSet:
    """The pairs and everything that identifies how they were made."""

    pairs: list[dict[str, Any]]
    record: dict[str, Any]

    def write(self, path: str | Path) -> Path:
        from llm_mia.io.outputs import write_json

        return write_json(Path(path), {"format": FORMAT, **self.record, "pairs": self.pairs})


def read_synthetic_set(path: str | Path, work: str | Path | None = None) -> SyntheticSet:
    """Read a stored set; with ``work``, refuse it when the work's texts are not the ones it was made from."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a synthetic set ({error})") from None
    if data.get("format") != FORMAT:
        raise InputError(f"{path}: not written by `llm-mia synthesize`")
    pairs = data.pop("pairs")
    data.pop("format")
    if any(GENERATOR_LOSSES not in pair for pair in pairs):
        raise InputError(
            f"{path}: the pairs carry no generator losses (the set was made before the generator-quality check); "
            "make it again with `llm-mia synthesize`"
        )
    if work is not None and work_sha256(read_work(work)) != data["work"]["sha256"]:
        raise InputError(f"{path} was made from another text than {work} (SHA-256 differs); synthesize it again")
    return SyntheticSet(pairs, data)


def work_sha256(texts: Sequence[str]) -> str:
    return hashlib.sha256("\n\x00".join(texts).encode("utf-8")).hexdigest()


def synthesize(work: str | Path, settings: SynthesisSettings, *, progress: bool = True) -> SyntheticSet:
    """Cut, split, fine-tune the generator, complete the inference snippets, check for copying (module
    docstring); the set, not yet written. ``settings.device`` ``auto`` becomes the device used (cuda when torch
    sees a GPU, else cpu), which the set's record names."""
    from llm_mia.known_split.training_loop import device_for_training

    settings = replace(settings, device=device_for_training(settings.device))
    texts = read_work(work)
    snippets = cut_snippets(texts, settings.snippet_words)
    inference, training = split_snippets(snippets, settings, str(work))
    directory, record = train_generator(training, settings, progress=progress)
    check_generator_unseen(record, inference)
    pairs = complete(inference, Path(directory), settings, progress)
    for side in ("synthetic", "synthetic_control"):
        found = copied([p[side] for p in pairs], texts, settings.copy_words)
        if len(found) > settings.max_copied_share * len(pairs):
            raise LlmMiaError(
                f"the generator copied the work: {len(found)} of {len(pairs)} synthetic suffixes contain a span of "
                f"{settings.copy_words} generated words found in the suspect work (at most "
                f"{settings.max_copied_share:.0%} allowed), e.g. {next(iter(found.values()))!r}; copied text is not "
                "held out. Fine-tune fewer epochs, sample at a higher temperature, or, where such spans are the "
                "genre's formulae rather than copies, raise --copy-words"
            )
    return SyntheticSet(
        pairs,
        {
            "work": {"path": str(work), "sha256": work_sha256(texts), "snippets": len(snippets)},
            "generator": {
                "base": settings.generator,
                "directory": str(directory),
                "training_key": record.get("key"),
                "trained_on_snippets": len(training),
            },
            "settings": asdict(settings),
            "unseen_by_construction": "the generator never saw an inference snippet; the synthetic suffixes did "
            "not exist before this run",
        },
    )
