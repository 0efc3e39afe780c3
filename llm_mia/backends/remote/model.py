"""A model behind an OpenAI-compatible API, standing where a loaded white-box model stands.

``--model api:NAME --api-base URL`` names one. :func:`connect` probes what the endpoint can serve
(:mod:`llm_mia.backends.remote.capabilities`); :class:`RemoteModel` implements ``llm_mia.backends.protocol.Model``:
its ``token_stats`` sends the texts to :func:`llm_mia.backends.remote.extract.remote_extract` instead of the
white-box engine, it offers token log-probs only (:data:`REMOTE_CAPABILITIES`), and every scorer that reads only
token log-probs works unchanged. The run record states the endpoint, its capabilities and whether
``llm-mia check-backend`` has compared it with white-box scores (until then its numbers are not trusted).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.backends.local import ModelSpec
from llm_mia.backends.protocol import Engine, ModelCapabilities, NextTokenLogprobs, Observer
from llm_mia.backends.remote.answers import answer_logprobs
from llm_mia.backends.remote.capabilities import Capabilities, probe
from llm_mia.backends.remote.client import ApiClient, ApiSettings
from llm_mia.backends.remote.extract import remote_extract
from llm_mia.backends.remote.responses import ResponseCache
from llm_mia.backends.remote.sampling import sample_continuations
from llm_mia.backends.token_stats import TokenStats
from llm_mia.errors import LlmMiaError
from llm_mia.io.identity import cache_dir

logger = logging.getLogger(__name__)

PREFIX = "api:"

# what a model behind an API offers (llm_mia.backends.protocol.ModelCapabilities): token log-probs, nothing more
REMOTE_CAPABILITIES = ModelCapabilities(
    token_arrays=("logprob",), weights=False, tokenizer=False, files=False, processes=False, endpoint=True
)


def is_remote(name: str) -> bool:
    """Whether a ``--model`` value names a model behind an API (``api:NAME``): the one place that reads the prefix
    (callers outside the backends ask ``llm_mia.backends.loading.capabilities_of`` instead)."""
    return name.startswith(PREFIX)


def endpoint_id(root: str, name: str) -> str:
    """A short stable id of (API root, model name), for the agreement-check records."""
    return hashlib.sha256(f"{root.rstrip('/')}\0{name}".encode()).hexdigest()[:16]


def backend_checks_dir() -> Path:
    """Where ``llm-mia check-backend`` stores its results: ``<cache>/backend-checks``."""
    return cache_dir() / "backend-checks"


def agreement_path(root: str, name: str) -> Path:
    return backend_checks_dir() / f"{endpoint_id(root, name)}.json"


def agreement_record(root: str, name: str) -> dict[str, Any] | None:
    """The last ``llm-mia check-backend`` result for this endpoint and model, or None if it was never run."""
    path = agreement_path(root, name)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


@dataclass
class RemoteModel:
    """An endpoint and model name, with what the probe found: a ``llm_mia.backends.protocol.Model`` (``device`` is
    ``remote``; ``tokenizer`` is None, the endpoint's being unknown)."""

    spec: ModelSpec
    api: ApiSettings
    client: ApiClient
    capabilities: Capabilities
    device: str = "remote"
    tokenizer: Any = None
    unscored_tokens: int = 0  # forced mode: tokens whose prefix did not re-tokenize to itself (left unscored)

    @property
    def name(self) -> str:
        return self.spec.name.removeprefix(PREFIX)

    @property
    def offers(self) -> ModelCapabilities:
        """Token log-probs only, computed by the endpoint (:data:`REMOTE_CAPABILITIES`)."""
        return REMOTE_CAPABILITIES

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
        """One ``TokenStats`` per text from the endpoint's prompt log-probs
        (:func:`llm_mia.backends.remote.extract.remote_extract`), its responses kept beside the run's stats
        ``cache`` (``responses.sqlite``: a rerun sends nothing twice). ``engine`` is not used: the endpoint computes.
        """
        if condition:
            raise LlmMiaError(
                f"reading texts after a prefix needs a white-box model; {self.spec.name} is behind an API"
            )
        if shard is not None and shard.count > 1:
            raise LlmMiaError(
                f"{self.spec.name} is behind an API: run it in one process (every process would send every "
                "request); the endpoint does the computing"
            )
        responses = None if cache is None else ResponseCache(cache.path.with_name("responses.sqlite"))
        heard = None
        if observer is not None:

            def heard(index: int, event: dict[str, Any]) -> None:
                observer({**event, "documents": [index]})

        try:
            return remote_extract(
                texts,
                self,
                cache=responses,
                description=description,
                progress=settings.progress,
                observer=heard,
                names=names,
            )
        finally:
            if responses is not None:
                responses.close()

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
        """Each answer's log-prob as the endpoint's next token (:mod:`llm_mia.backends.remote.answers`); ``engine``
        and ``batch_size`` are not used: the endpoint computes, ``--api-concurrency`` requests at a time."""
        values, incomplete = answer_logprobs(prompts, self, answers, system_prompt=system_prompt, cache=cache)
        return NextTokenLogprobs(values=values, incomplete=incomplete)

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
        """Continuations sampled by the endpoint (:mod:`llm_mia.backends.remote.sampling`); ``engine`` is not used."""
        return sample_continuations(
            prompt,
            self,
            samples=samples,
            max_new_tokens=max_new_tokens,
            seed=seed,
            temperature=temperature,
            chat_instruction=chat_instruction,
            cache=cache,
        )

    @property
    def tokenizer_id(self) -> str:
        """The API's tokenizer is unknown: an id of the endpoint and the model version it reports."""
        seed = f"{self.api.root}\0{self.name}\0{self.capabilities.model_version}"
        return "api:" + hashlib.sha256(seed.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Identity for run records: the endpoint (no key), what it serves, whether its numbers were checked."""
        check = agreement_record(self.api.root, self.name)
        return {
            "name": self.spec.name,
            "backend": "OpenAI-compatible API",
            "api": self.api.to_dict(),
            "model_version": self.capabilities.model_version,
            "capabilities": self.capabilities.to_dict(),
            "tokenizer_id": self.tokenizer_id,
            "unscored_tokens": self.unscored_tokens,
            "requests_sent": self.client.sent,
            "agreement_check": check
            or "never run: these numbers are not trusted until `llm-mia check-backend` has compared this endpoint "
            "with white-box scores",
        }


def connect(spec: ModelSpec, api: ApiSettings | None, *, cache: Any = None) -> RemoteModel:
    """Probe ``spec`` (``api:NAME``) at ``api.base_url`` and return it ready for scoring."""
    if api is None:
        raise LlmMiaError(f"--model {spec.name} is behind an API: give its root with --api-base URL")
    name = spec.name.removeprefix(PREFIX)
    if not name:
        raise LlmMiaError("--model api: needs a model name after the colon, e.g. api:gpt-3.5-turbo-instruct")
    client = ApiClient(api)
    capabilities = probe(client, name, cache=cache)
    if agreement_record(api.root, name) is None:
        logger.warning(
            "%s at %s has not been compared with white-box scores (llm-mia check-backend); its numbers are "
            "not trusted until it has",
            name,
            api.root,
        )
    return RemoteModel(spec=spec, api=api, client=client, capabilities=capabilities)
