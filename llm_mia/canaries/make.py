"""Making canaries: N secret sequences, each with S never-published siblings from the same seeded generator.

For each canary, S + 1 sequences are drawn independently from the generator and one of them, chosen uniformly
at random, becomes the canary to publish; the other S stay secret. That choice after the draw is what makes the
canary exchangeable with its siblings under the null hypothesis, so its rank gives an exact p-value
(``llm_mia.canaries.ranks``).

Generators (``CanarySettings.generator``):

- ``words``: words drawn uniformly with replacement from a word list (default: every lowercase alphabetic word of
  3-12 letters in at least 3 of the packaged Wikipedia summaries, about 9,000 words; or one word per line from
  ``word_list``) until the text reaches ``length`` tokens under ``tokenizer`` (the last word that would exceed it
  is not added; each text records its own token count).
- ``template``: a sentence with slots filled independently: ``{word}`` a word from the word list, ``{number}`` a
  6-digit number, ``{number:K}`` a K-digit one (e.g. ``"The vault code of {word} {word} is {number:8}."``).
- ``model``: fluent text sampled from a local causal language model (``model``, default the packaged SmolLM2) at
  ``temperature``, ``length`` new tokens after a newline, kept only when its perplexity under that model lies in
  ``perplexity`` = (low, high), as Meeus et al. 2024 select traps by perplexity; draws are made until every canary
  has S + 1 accepted sequences, and the number of rejected draws is recorded.

The secret file (JSON) holds the canaries, their siblings, the generator, its settings, the seed and the word
list's SHA-256; the public commitment is the SHA-256 of that file's bytes, to publish or timestamp at planting
time (``llm-mia canary test`` refuses a secret file that does not match it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.errors import InputError, LlmMiaError

FORMAT = "llm-mia canaries"
VERSION = 1
GENERATORS = ("words", "template", "model")
MIN_SIBLINGS_FOR_5_PERCENT = 19


@dataclass(frozen=True)
class CanarySettings:
    """How canaries are drawn (see the module docstring)."""

    generator: str = "words"
    count: int = 20
    siblings: int = 999
    length: int = 32
    seed: int = 0
    tokenizer: str = "smollm2-135m"
    word_list: str | None = None
    template: str | None = None
    model: str = "smollm2-135m"
    temperature: float = 1.0
    perplexity: tuple[float, float] = (1.0, 1e9)

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise LlmMiaError(f"canary generator {self.generator!r}: valid are {', '.join(GENERATORS)}")
        if self.count < 1:
            raise LlmMiaError(f"--count {self.count}: make at least one canary")
        if self.siblings < 1:
            raise LlmMiaError(f"--siblings {self.siblings}: each canary needs siblings to be ranked among")
        if self.length < 2:
            raise LlmMiaError(f"--length {self.length}: canaries need at least 2 tokens")
        if self.generator == "template" and not (self.template and "{" in self.template):
            raise LlmMiaError("the template generator needs --template with {word} or {number} slots")
        low, high = self.perplexity
        if not 0 < low < high:
            raise LlmMiaError(f"perplexity band {self.perplexity}: need 0 < low < high")
        if self.temperature <= 0:
            raise LlmMiaError(f"temperature {self.temperature}: need > 0")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "perplexity": list(self.perplexity)}


def sibling_warning(siblings: int) -> str | None:
    """The line to print when S siblings cannot give p <= 0.05 (fewer than 19)."""
    if siblings >= MIN_SIBLINGS_FOR_5_PERCENT:
        return None
    return (
        f"{siblings} siblings: the smallest p-value possible is 1/{siblings + 1} = {1 / (siblings + 1):.3f}, so no "
        f"single canary can reach p <= 0.05 (that needs at least {MIN_SIBLINGS_FOR_5_PERCENT} siblings)"
    )


def default_word_list() -> list[str]:
    """Lowercase alphabetic words of 3-12 letters found in at least 3 packaged Wikipedia summaries, sorted."""
    from llm_mia.io.corpora import wikipedia_summaries

    documents: Counter[str] = Counter()  # word: summaries it occurs in
    for text in wikipedia_summaries().values():
        documents.update(set(re.findall(r"\b[a-z]{3,12}\b", text)))
    return sorted(word for word, n in documents.items() if n >= 3)


def read_word_list(path: str | None) -> list[str]:
    if path is None:
        return default_word_list()
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such word list (one word per line)")
    words = sorted({line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()})
    if len(words) < 2:
        raise InputError(f"{path}: a word list needs at least 2 distinct words, found {len(words)}")
    return words


def _load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    from llm_mia.backends.local import ModelSpec, resolve_model_directory

    return AutoTokenizer.from_pretrained(str(resolve_model_directory(ModelSpec(name=name))))


def _word_texts(rng: np.random.Generator, words: list[str], tokens: list[int], first: list[int], length: int) -> str:
    chosen: list[str] = []
    total = 0
    while True:
        index = int(rng.integers(len(words)))
        cost = first[index] if not chosen else tokens[index]
        if chosen and total + cost > length:
            return " ".join(chosen)
        chosen.append(words[index])
        total += cost


def _template_text(rng: np.random.Generator, template: str, words: list[str]) -> str:
    def fill(match: re.Match[str]) -> str:
        if match.group(1) == "word":
            return words[int(rng.integers(len(words)))]
        digits = int(match.group(2) or 6)
        return "".join(str(int(d)) for d in rng.integers(0, 10, size=digits))

    return re.sub(r"\{(word|number)(?::(\d+))?\}", fill, template)


def _draw_simple(settings: CanarySettings, rng: np.random.Generator, words: list[str], total: int) -> list[str]:
    if settings.generator == "template":
        return [_template_text(rng, settings.template or "", words) for _ in range(total)]
    tokenizer = _load_tokenizer(settings.tokenizer)
    tokens = [len(ids) for ids in tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]]
    first = [len(ids) for ids in tokenizer(words, add_special_tokens=False)["input_ids"]]
    return [_word_texts(rng, words, tokens, first, settings.length) for _ in range(total)]


def _draw_from_model(settings: CanarySettings, total: int) -> tuple[list[str], dict[str, Any]]:
    """Sample until ``total`` texts fall in the perplexity band; returns them and the draw counts."""
    from llm_mia.backends.local import ModelSpec, load_model
    from llm_mia.engine.extract import extract
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.engine.generation import sample_continuations

    loaded = load_model(ModelSpec(name=settings.model, device="cpu"))
    low, high = settings.perplexity
    accepted: list[str] = []
    drawn, batch = 0, 32
    while len(accepted) < total:
        if drawn > 50 * total + 1000:
            raise LlmMiaError(
                f"the model generator accepted {len(accepted)} of {drawn} draws in perplexity band [{low}, {high}]; "
                "widen the band or change the temperature"
            )
        texts = sample_continuations(
            "\n",
            loaded,
            samples=batch,
            max_new_tokens=settings.length,
            seed=settings.seed * 1_000_003 + drawn,
            temperature=settings.temperature,
            top_k=0,
        )
        drawn += batch
        texts = [t.strip() for t in texts if t.strip()]
        for text, stats in zip(texts, extract(texts, loaded, ExtractionSettings(progress=False)), strict=True):
            if stats.ok and stats.n_scored and low <= float(np.exp(-np.mean(stats.logprob))) <= high:
                accepted.append(text)
    return accepted[:total], {"draws": drawn, "accepted": total, "model": loaded.describe()}


def make_canaries(settings: CanarySettings) -> dict[str, Any]:
    """The secret record: N canaries with S siblings each (see the module docstring). Nothing is written."""
    words = read_word_list(settings.word_list) if settings.generator != "model" else []
    rng = np.random.default_rng(settings.seed)
    per = settings.siblings + 1
    total = settings.count * per
    extra: dict[str, Any] = {}
    if settings.generator == "model":
        drawn, extra = _draw_from_model(settings, total)
    else:
        drawn = _draw_simple(settings, rng, words, total)
    choice = np.random.default_rng([settings.seed, 1]).integers(per, size=settings.count)
    canaries = []
    for i in range(settings.count):
        group = drawn[i * per : (i + 1) * per]
        published = int(choice[i])
        canaries.append(
            {
                "id": f"canary-{i:04d}",
                "text": group[published],
                "siblings": group[:published] + group[published + 1 :],
            }
        )
    texts = [c["text"] for c in canaries]
    if len(set(texts)) < len(texts):
        raise LlmMiaError("two canaries came out identical: the generator has too little entropy for this count")
    return {
        "format": FORMAT,
        "version": VERSION,
        "settings": settings.to_dict(),
        "word_list_sha256": hashlib.sha256("\n".join(words).encode()).hexdigest() if words else None,
        "word_list_size": len(words),
        "generation": extra,
        "canaries": canaries,
    }


def write_secret(record: dict[str, Any], path: Path) -> str:
    """Write the secret file (refusing to overwrite one) and return its commitment (SHA-256 of its bytes)."""
    if path.exists():
        raise InputError(f"{path} exists: a secret file is never overwritten (its commitment may be published)")
    data = json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    staging.replace(path)
    return hashlib.sha256(data).hexdigest()


def commitment_record(secret: Path, digest: str, record: dict[str, Any]) -> dict[str, Any]:
    """The public commitment: the hash and what it commits to, no canary text."""
    settings = record["settings"]
    return {
        "format": "llm-mia canary commitment",
        "secret_file": secret.name,
        "sha256": digest,
        "canaries": len(record["canaries"]),
        "siblings_per_canary": settings["siblings"],
        "generator": settings["generator"],
    }


def read_secret(path: Path, commitment: str | None) -> dict[str, Any]:
    """Read a secret file, refusing it when ``commitment`` (a SHA-256 hex digest, or a commitment JSON file) does
    not match its bytes."""
    if not path.is_file():
        raise InputError(f"{path}: no such secret file")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if commitment is not None:
        expected = commitment.strip()
        if Path(expected).is_file():
            expected = json.loads(Path(expected).read_text(encoding="utf-8"))["sha256"]
        if expected.lower() != digest:
            raise InputError(
                f"{path}: its SHA-256 is {digest}, not the committed {expected}; the secret file was changed after "
                "the commitment (or it is another file): its canaries cannot be tested against that commitment"
            )
    record = json.loads(data)
    if record.get("format") != FORMAT:
        raise InputError(f"{path}: not an llm-mia canary secret file")
    return record | {"sha256": digest}


def all_texts(record: dict[str, Any]) -> Sequence[str]:
    return [text for c in record["canaries"] for text in (c["text"], *c["siblings"])]
