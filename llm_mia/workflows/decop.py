"""The DE-COP workflow: passages with paraphrases in, one score row per passage and a run record out.

Every passage is asked in the 24 orders of its four options (``llm_mia.methods.decop``); the target is a white-box model
or one behind an API, through the model's ``next_token_logprobs`` (``llm_mia.backends.protocol.Model``: a white-box
model's one pass over each prompt, or an endpoint's completions, or chat for chat-only endpoints, with responses cached
so that a rerun sends nothing twice). Rows carry ``decop`` (mean probability of the verbatim option, chance 0.25) and
``decop_accuracy``, with id, label, group and status as score rows do, so ``evaluate``, ``calibrate`` and ``verdict``
read them like any score file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm_mia.backends.loading import ModelSettings
from llm_mia.errors import LlmMiaError
from llm_mia.io.identity import sha256_text, sha256_texts
from llm_mia.io.records import run_record, write_run_record
from llm_mia.io.score_files import write_rows
from llm_mia.methods.decop import LETTERS, SYSTEM_PROMPT, QuizPassage, passage_scores, quizzes

logger = logging.getLogger(__name__)

STATUS_NO_ANSWER = "no answer letter among the returned tokens in any ordering"


@dataclass(frozen=True)
class DecopSettings:
    """``subject``: how the question names the work (``the "Emma" book by Jane Austen``). ``batch_size``: prompts
    per forward pass (white-box). ``cache``: keep API responses (True: beside the default stats cache; a path:
    that ``responses.sqlite``; False: none)."""

    subject: str
    models: ModelSettings = field(default_factory=ModelSettings)
    batch_size: int = 8
    cache: bool | str | Path = True

    def __post_init__(self) -> None:
        if not self.subject.strip():
            raise LlmMiaError("DE-COP needs --subject naming the work, e.g. 'the \"Emma\" book by Jane Austen'")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise LlmMiaError(
                f"--batch-size {self.batch_size!r}: DE-COP needs a number of prompts >= 1 (auto is for scoring)"
            )


@dataclass
class DecopRun:
    """DE-COP's rows (a score file: ``decop``, ``decop_accuracy``) and their run record."""

    rows: list[dict[str, Any]]
    record: dict[str, Any]

    def write(self, path: str | Path) -> list[Path]:
        """The rows (``.jsonl`` or ``.csv``) and the run record beside them."""
        return [write_rows(self.rows, path), write_run_record(path, self.record)]

    def summary_lines(self) -> list[str]:
        """The mean probability of the verbatim option, and what to compare it with."""
        scores = [row["decop"] for row in self.rows if row["decop"] is not None]
        mean = sum(scores) / len(scores) if scores else float("nan")
        return [f"mean DE-COP probability {mean:.3f} (chance 0.25; compare with control works, not with chance)"]


def paraphraser(name: str, settings: ModelSettings) -> tuple[Any, dict[str, Any]]:
    """``generate(text, seed) -> paraphrase`` from the model ``name`` (local, or ``api:NAME`` at the settings' API),
    and its identity for the run record (``llm_mia.methods.paraphrase`` says how it is asked)."""
    from llm_mia.backends.loading import capabilities_of
    from llm_mia.backends.local import ModelSpec
    from llm_mia.backends.remote.model import connect
    from llm_mia.methods.paraphrase import INSTRUCTION, TEMPERATURE

    if capabilities_of(name).endpoint:
        model = connect(ModelSpec(name=name), settings.api)
        chat = model.capabilities.chat.startswith(("log-probs", "text"))

        def generate_remotely(text: str, seed: int) -> str:
            common = {"model": model.name, "max_tokens": 3 * len(text.split()) + 16, "temperature": TEMPERATURE}
            common["seed"] = seed
            if chat:
                payload = {**common, "messages": [{"role": "user", "content": INSTRUCTION + text}]}
                choice = model.client.post("chat/completions", payload)["choices"][0]
                return (choice.get("message") or {}).get("content") or ""
            payload = {**common, "prompt": INSTRUCTION + text + "\n\nRewritten passage:"}
            return model.client.post("completions", payload)["choices"][0].get("text") or ""

        return generate_remotely, {**model.describe(), "asked_through": "chat" if chat else "completions"}
    from llm_mia.backends.local import load_model
    from llm_mia.engine.generation import sample_continuations

    loaded = load_model(ModelSpec(name=name, dtype=settings.dtype, device=settings.device))
    chat = bool(getattr(loaded.tokenizer, "chat_template", None))

    def generate(text: str, seed: int) -> str:
        prompt = INSTRUCTION + text if chat else INSTRUCTION + text + "\n\nRewritten passage:"
        budget = 2 * len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"]) + 16
        return sample_continuations(
            prompt, loaded, samples=1, max_new_tokens=budget, seed=seed, temperature=TEMPERATURE, chat_template=chat
        )[0]

    return generate, {**loaded.describe(), "asked_through": "chat template" if chat else "plain prompt"}


def run_decop(
    passages: Sequence[QuizPassage],
    settings: DecopSettings,
    *,
    source: str = "input",
    paraphrases_from: dict[str, Any] | None = None,
) -> DecopRun:
    """DE-COP scores for ``passages`` under the settings' target model (module docstring).

    ``paraphrases_from``: where passages' paraphrases came from when a model wrote them (``paraphraser``'s
    identity and the seeds kept), for the run record.
    """
    from llm_mia.backends.loading import open_model
    from llm_mia.backends.remote.responses import response_cache
    from llm_mia.engine.extract import ExtractionContext

    if not passages:
        raise LlmMiaError(f"{source}: no passages")
    model = open_model(settings.models.specs()["target"], settings.models.api)
    engine = ExtractionContext()
    # an endpoint keeps its answers (a rerun sends nothing twice); a local model has none to keep
    responses = response_cache(settings.cache) if model.offers.endpoint else None
    incomplete = 0
    answer_tokens: list[int] | None = None

    def answer(prompts: list[str]) -> np.ndarray:
        nonlocal incomplete, answer_tokens
        found = model.next_token_logprobs(
            prompts,
            LETTERS,
            engine=engine,
            system_prompt=SYSTEM_PROMPT,
            cache=responses,
            batch_size=settings.batch_size,
        )
        incomplete += found.incomplete
        answer_tokens = found.answer_tokens
        return found.values

    described = model.describe()
    rows = []
    for passage in passages:
        asked = quizzes(passage, settings.subject)
        try:
            values = answer([prompt for prompt, _ in asked])
        except LlmMiaError as error:
            kept = " (responses received so far are kept: a rerun resumes)" if responses is not None else ""
            raise LlmMiaError(f"passage {passage.id!r}: {error}{kept}") from None
        answered = np.isfinite(values).any(axis=1)
        answers = [verbatim for _, verbatim in asked]
        if answered.any():
            score, accuracy = passage_scores(values[answered], np.asarray(answers)[answered])
            status = "ok"
        else:
            score, accuracy, status = None, None, STATUS_NO_ANSWER
        rows.append(
            {
                "id": passage.id,
                "label": passage.label,
                "group": passage.group,
                "status": status,
                "text_sha256": sha256_text(passage.text),
                "paraphrases_sha256": sha256_texts(list(passage.paraphrases)),
                "decop": score,
                "decop_accuracy": accuracy,
                "orderings_answered": int(answered.sum()),
            }
        )
    record = run_record(
        "llm-mia decop",
        inputs={
            "source": source,
            "passages": len(passages),
            "sha256": sha256_texts([p.text for p in passages]),
            "paraphrases_sha256": sha256_texts([q for p in passages for q in p.paraphrases]),
        },
        models={"target": described | ({"answer_tokens": answer_tokens} if answer_tokens is not None else {})},
        scorers=[
            {"column": "decop", "scorer": "decop", "params": {"orderings": 24, "subject": settings.subject}},
            {"column": "decop_accuracy", "scorer": "decop_accuracy", "params": {"orderings": 24}},
        ],
        settings={"subject": settings.subject, "batch_size": settings.batch_size},
        execution={"orderings_missing_a_letter": incomplete, "random_seed": "none used: answers at temperature 0"},
        paraphrases=paraphrases_from or "given with the input",
    )
    return DecopRun(rows=rows, record=record)


def run_decop_quiz(
    quiz: str | Path,
    settings: DecopSettings,
    *,
    paraphrase_model: str | None = None,
    paraphrases_out: str | Path | None = None,
    echo: Callable[[str], None] = logger.info,
) -> DecopRun:
    """``llm-mia decop``: read the quiz file ``quiz`` (``llm_mia.methods.decop.read_quiz_passages``) and run
    :func:`run_decop` on it. With ``paraphrase_model``, that model first writes the paraphrases of passages that
    have none (:func:`paraphraser`), kept with their seeds in ``paraphrases_out`` (the quiz to rerun with) and
    named in the run record; ``echo`` hears where they went."""
    from llm_mia.methods.decop import read_quiz_passages, write_quiz_passages
    from llm_mia.methods.paraphrase import write_paraphrases

    if paraphrase_model is None:
        return run_decop(read_quiz_passages(quiz), settings, source=str(quiz))
    if paraphrases_out is None:
        raise LlmMiaError("--paraphrase-model needs --paraphrases-out: the paraphrases are kept with the run")
    passages = read_quiz_passages(quiz, require_paraphrases=False)
    generate, identity = paraphraser(paraphrase_model, settings.models)
    passages, seeds = write_paraphrases(passages, generate)
    write_quiz_passages(passages, Path(paraphrases_out))
    echo(f"wrote the paraphrases to {paraphrases_out} (rerun with --input {paraphrases_out} to ask the same quiz)")
    paraphrases_from = {"model": identity, "seeds": seeds, "file": str(paraphrases_out)}
    return run_decop(passages, settings, source=str(quiz), paraphrases_from=paraphrases_from)
