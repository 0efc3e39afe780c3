"""Which models a run uses and how they are loaded: ``ModelSettings`` (validated on construction, importable without
torch), :func:`capabilities_of` (what a ``--model`` value offers, before anything is loaded), :func:`open_model`
and :func:`load_models`, which load the local ones and connect to those behind an API. The one place outside
``llm_mia.backends.remote`` that tells the two apart by name."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

from llm_mia.backends.local import DEFAULT_MODEL, DTYPES, LOCAL_CAPABILITIES, ModelSpec, load_model
from llm_mia.backends.protocol import Model, ModelCapabilities
from llm_mia.backends.remote.client import ApiSettings
from llm_mia.errors import LlmMiaError


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
            from llm_mia.defenses.output import parse_defense

            parse_defense(self.output_defense)
            if not capabilities_of(self.model).weights:
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
        """The models (target, reference) served behind an API (``api:NAME``)."""
        return [name for name in (self.model, self.reference) if name and capabilities_of(name).endpoint]

    def offers(self, role: str = "target") -> ModelCapabilities:
        """What the model of ``role`` (``target``, ``reference``) offers, from its name alone
        (:func:`capabilities_of`)."""
        name = {"target": self.model, "reference": self.reference}[role]
        if name is None:
            raise LlmMiaError(f"no {role} model is named")
        return capabilities_of(name)

    def specs(self, *, device: str | None = None) -> dict[str, ModelSpec]:
        """One :class:`ModelSpec` per role (``target``, and ``reference`` when given)."""
        spec = partial(
            ModelSpec,
            dtype=self.dtype,
            device=device or self.device,
            trust_remote_code=self.trust_remote_code,
            device_map=self.device_map,
            max_memory=self.max_memory,
        )
        specs = {"target": spec(name=self.model, revision=self.revision)}
        if self.reference:
            specs["reference"] = spec(name=self.reference, revision=self.reference_revision)
        return specs


def capabilities_of(name: str) -> ModelCapabilities:
    """What the model a ``--model`` value names offers (``llm_mia.backends.protocol.ModelCapabilities``), known
    from the name alone: a model behind an API (``api:NAME``) returns token log-probs and nothing else; any other
    name is a local model, which offers everything. Nothing is loaded or contacted."""
    from llm_mia.backends.remote.model import REMOTE_CAPABILITIES, is_remote

    return REMOTE_CAPABILITIES if is_remote(name) else LOCAL_CAPABILITIES


def open_model(spec: ModelSpec, api: ApiSettings | None = None) -> Model:
    """The model ``spec`` names, ready to use: loaded offline (``llm_mia.backends.local.load_model``), or for
    ``api:NAME`` connected to and probed at ``api`` (``llm_mia.backends.remote.model.connect``)."""
    from llm_mia.backends.remote.model import connect

    return connect(spec, api) if capabilities_of(spec.name).endpoint else load_model(spec)


def load_models(settings: ModelSettings) -> dict[str, Model]:
    """Load the target (and reference) model offline, each process of a launched run on its own device; connect to
    (and probe) those behind an API (:func:`open_model`). The target carries the settings' output defense, if
    any."""
    from llm_mia.defenses.output import defended

    device = process_device(settings.device)
    models = {role: open_model(spec, settings.api) for role, spec in settings.specs(device=device).items()}
    models["target"] = defended(models["target"], settings.output_defense)
    return models


def launched_processes() -> int:
    """Number of processes the launcher started (1 when not launched by accelerate/torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_device(requested: str) -> str:
    """The device for this process: with several processes on GPUs (a launched run), each takes its own local
    GPU."""
    if launched_processes() <= 1 or requested not in ("cuda", "auto"):
        return requested
    import torch

    if not torch.cuda.is_available():
        return "cpu" if requested == "auto" else requested
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
