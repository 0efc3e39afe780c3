"""Validated settings for scoring: which models, how texts are batched and windowed, which scorers, which cache.

Frozen dataclasses, checked on construction, importable without torch: a command builds its settings (and so
reports a bad scorer name, dtype or window) before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mia.backends.local import DEFAULT_MODEL, DTYPES, ModelSpec
from llm_mia.backends.remote.client import ApiSettings
from llm_mia.errors import LlmMiaError
from llm_mia.scoring.scorers import ScorerCall, parse_scorer_specs


@dataclass(frozen=True)
class ExtractionSettings:
    """How texts are batched and windowed.

    ``batch_size``: segments per forward pass, or ``"auto"``: batches of the largest token count that fits, found
    once per model, device and window and remembered (``llm_mia.engine.batch_size``). ``window``: tokens per model call
    including the BOS prefix (default: the model's context length). ``stride``: new tokens scored per window after
    the first (default: half of the window's content capacity); every scored token beyond the first window sees at
    least ``window - len(prefix) - stride`` tokens of context. ``block_documents``: documents planned together, in
    input order: batches are formed (length-sorted) within each block, so a block is the unit a distributed engine
    hands out and commits, and a document's bits depend only on its block. ``threads``: torch CPU threads, a number,
    ``"auto"`` (the cores other work leaves free, ``llm_mia.engine.threads``) or None (torch's own setting); on CPU the
    count changes the last bits, so bit-identical reruns need a fixed number. ``progress``: show a progress bar over
    tokens.
    """

    batch_size: int | str = 8
    window: int | None = None
    stride: int | None = None
    block_documents: int = 256
    threads: int | str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise LlmMiaError(f"batch_size must be an integer >= 1 or 'auto', got {self.batch_size!r}")
        if self.window is not None and self.window < 2:
            raise LlmMiaError(f"window must be >= 2 tokens, got {self.window}")
        if self.stride is not None and self.stride < 1:
            raise LlmMiaError(f"stride must be >= 1 token, got {self.stride}")
        if self.block_documents < 1:
            raise LlmMiaError(f"block_documents must be >= 1, got {self.block_documents}")
        from llm_mia.engine.threads import parse_threads

        object.__setattr__(self, "threads", parse_threads(self.threads))

    def to_dict(self) -> dict[str, Any]:
        """What decides the numbers (progress does not)."""
        return {
            "batch_size": self.batch_size,
            "window": self.window,
            "stride": self.stride,
            "block_documents": self.block_documents,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class ModelSettings:
    """The target model and an optional reference model, and how both are loaded.

    ``model`` / ``reference``: packaged alias, local directory, ``.gguf`` file or cached Hugging Face id
    (``revision`` / ``reference_revision`` pick a snapshot of an id). ``dtype`` and ``device`` apply to both;
    log-softmax and every reduction run in float32 whatever the dtype. ``trust_remote_code`` stays off unless
    asked for. ``api``: where models named ``api:NAME`` are served (an OpenAI-compatible root URL, the key's
    environment variable, rate limits); required when either model is one. ``output_defense``: an inference-time
    defense spec applied to the target's outputs (``llm_mia.defenses.output``, e.g. ``temperature:t=2``); the
    reference model is the attacker's own and stays undefended. ``device_map`` / ``max_memory``: ``auto`` spreads
    a model too large for one device over GPUs, CPU and disk (``llm_mia.backends.big_models``), within the given
    (device, size) limits.
    """

    model: str = DEFAULT_MODEL
    revision: str | None = None
    reference: str | None = None
    reference_revision: str | None = None
    dtype: str = "float32"
    device: str = "auto"
    trust_remote_code: bool = False
    api: ApiSettings | None = None
    output_defense: str | None = None
    device_map: str | None = None
    max_memory: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise LlmMiaError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.output_defense:
            from llm_mia.backends.remote.model import is_remote
            from llm_mia.defenses.output import parse_defense

            parse_defense(self.output_defense)
            if is_remote(self.model):
                raise LlmMiaError(
                    f"--output-defense applies to a local model's logits; {self.model} returns what its server "
                    "returns (score it as it is)"
                )
        self.specs()  # validates the device
        for name in self.remote_names:
            if self.api is None:
                raise LlmMiaError(f"--model {name} is behind an API: give its root with --api-base URL")

    @property
    def remote_names(self) -> list[str]:
        """The models (target, reference) named ``api:NAME``."""
        from llm_mia.backends.remote.model import is_remote

        return [name for name in (self.model, self.reference) if name and is_remote(name)]

    def specs(self, *, device: str | None = None) -> dict[str, ModelSpec]:
        """One :class:`ModelSpec` per role (``target``, and ``reference`` when given)."""
        common = {
            "dtype": self.dtype,
            "device": device or self.device,
            "trust_remote_code": self.trust_remote_code,
            "device_map": self.device_map,
            "max_memory": self.max_memory,
        }
        specs = {"target": ModelSpec(name=self.model, revision=self.revision, **common)}
        if self.reference:
            specs["reference"] = ModelSpec(name=self.reference, revision=self.reference_revision, **common)
        return specs


@dataclass(frozen=True)
class ScoringSettings:
    """Everything that decides a score table: models, scorers, extraction settings, and the stats cache.

    ``scorers``: names or specs such as ``"min_k:k=0.1,0.2"`` (None: every scorer the models allow); parsed on
    construction, so an unknown name fails here. ``cache``: True for the default stats cache, False for none,
    or the path of a cache database. The cache never changes a number: a resumed run gives the same bits as
    an uninterrupted one. ``ray``: a ``llm_mia.scoring.ray_engine.RaySettings`` to score on Ray actors (None: here).
    """

    models: ModelSettings = field(default_factory=ModelSettings)
    scorers: tuple[str, ...] | None = None
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    cache: bool | str | Path = True
    ray: Any = None  # an llm_mia.scoring.ray_engine.RaySettings: score on Ray actors instead of in this process

    def __post_init__(self) -> None:
        if isinstance(self.scorers, str):
            raise LlmMiaError(f"scorers must be a sequence of names, not the string {self.scorers!r}")
        if self.scorers is not None:
            object.__setattr__(self, "scorers", tuple(self.scorers))
        self.calls  # noqa: B018  (parses and validates the scorer specs)

    @property
    def calls(self) -> list[ScorerCall]:
        """The scorer calls (one per column), in the order asked for."""
        from llm_mia.backends.remote.model import is_remote

        # a target behind an API gives token log-probs only; a reference behind one serves only `reference`,
        # which reads nothing more, so it does not restrict what the target's scorers may read
        remote = is_remote(self.models.model)
        return parse_scorer_specs(
            list(self.scorers) if self.scorers else None,
            has_reference=bool(self.models.reference),
            arrays=("logprob",) if remote else None,
            provider=f"a model behind an API ({self.models.model})",
        )

    @property
    def cache_path(self) -> Path | None:
        """The cache database to use: None when off, else the given path or the default location."""
        if self.cache is False:
            return None
        if self.cache is True:
            from llm_mia.engine.stats_cache import default_cache_path

            return default_cache_path()
        return Path(self.cache)
