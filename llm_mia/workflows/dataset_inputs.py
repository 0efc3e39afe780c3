"""The inputs of a dataset-level test: a suspect work and control works read and cut into passages of one fixed
length with the target model's tokenizer, with the refusals that keep the comparison fair (a text, a passage or
mostly-copied text on both sides). :func:`cut_inputs` returns :class:`DatasetInputs`; no model is run. Used by
``llm-mia dataset-test`` (:mod:`llm_mia.workflows.dataset`), ``llm-mia plan`` and the extraction test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mia.errors import InputError
from llm_mia.io.identity import sha256_text
from llm_mia.io.passages import Passage, Source, passages_from_sources, read_sources
from llm_mia.stats.passage_test import MIN_PASSAGES_PER_SET

EXAMPLES = 5  # passages named in a refusal; the count says how many more


def _check_passages(name: str, found: list[Passage], needed: int, cut: Any, settings: Any) -> None:
    if len(found) >= needed:
        return
    short = f"; {len(cut.too_short)} of {cut.sources} source(s) are shorter than one passage" if cut.too_short else ""
    raise InputError(
        f"--{name} gives {len(found)} passage(s) of {settings.passage_tokens} tokens{short}; the test needs at "
        f"least {MIN_PASSAGES_PER_SET} suspect and {2 * MIN_PASSAGES_PER_SET} control passages. Add text or lower "
        f"--passage-tokens (every passage on both sides has exactly that many tokens)"
    )


@dataclass
class DatasetInputs:
    """A work and its controls read and cut into passages: what a dataset-level test is run on.

    ``shared``: passage texts found on both sides, left out of both.
    """

    suspect: str
    control: str
    suspect_sources: list[Source]
    control_sources: list[Source]
    suspect_passages: list[Passage]
    control_passages: list[Passage]
    suspect_cut: Any
    control_cut: Any
    shared: int


def cut_inputs(
    suspect: str | Path,
    control: str | Path,
    settings: Any,
    *,
    tokenizer: Any,
    refuse_shared: bool = False,
    refuse_copied: bool = False,
) -> DatasetInputs:
    """Read both inputs (any input ``llm_mia.io.documents.read_documents`` reads), refuse texts found on both sides,
    cut passages of exactly ``passage_tokens`` tokens with ``tokenizer`` (the target model's), leave out passages
    found on both sides (``refuse_shared``: refuse them instead), refuse any passage mostly made of text found
    verbatim on the other side when ``refuse_copied`` (``llm_mia.stats.overlap``), and check there are enough; no model
    is run."""
    suspect_sources = read_sources(suspect, works=settings.suspect_works, name=Path(suspect).name)
    control_sources = read_sources(control, works=settings.control_works, name=Path(control).name)
    _refuse_overlap(suspect_sources, control_sources)
    options = {"tokenizer": tokenizer, "passage_tokens": settings.passage_tokens, "stride": settings.passage_stride}
    suspect_passages, suspect_cut = passages_from_sources(suspect_sources, **options)
    control_passages, control_cut = passages_from_sources(control_sources, **options)
    # a passage found on both sides (boilerplate, a quotation) would compare a text with itself: left out of both
    shared = {sha256_text(p.text) for p in suspect_passages} & {sha256_text(p.text) for p in control_passages}
    if shared and refuse_shared:
        pairs = [
            (p, next(c for c in control_passages if sha256_text(c.text) == sha256_text(p.text)))
            for p in suspect_passages
            if sha256_text(p.text) in shared
        ]
        shown = "; ".join(f"suspect {s.id!r} = control {c.id!r}" for s, c in pairs[:EXAMPLES])
        more = f"; and {len(pairs) - EXAMPLES} more" if len(pairs) > EXAMPLES else ""
        raise InputError(
            f"{len(shared)} passage(s) appear in both the suspect work and the controls: {shown}{more}. The "
            f"controls must be separate texts the model cannot have seen: remove the shared text (boilerplate, a "
            f"licence, quotations) from one side"
        )
    if refuse_shared or refuse_copied:
        _refuse_copied_text(suspect_passages, control_passages, suspect_sources, control_sources)
    suspect_passages = [p for p in suspect_passages if sha256_text(p.text) not in shared]
    control_passages = [p for p in control_passages if sha256_text(p.text) not in shared]
    _check_passages("suspect", suspect_passages, MIN_PASSAGES_PER_SET, suspect_cut, settings)
    _check_passages("control", control_passages, 2 * MIN_PASSAGES_PER_SET, control_cut, settings)
    return DatasetInputs(
        str(suspect),
        str(control),
        suspect_sources,
        control_sources,
        suspect_passages,
        control_passages,
        suspect_cut,
        control_cut,
        len(shared),
    )


def cutting_tokenizer(settings: Any, models: Any = None) -> Any:
    """The tokenizer passages are cut with: the target's (the loaded model's, when ``models`` are given), or for a
    target behind an API the ``tokenizer`` model's. Only tokenizer files are read; no weights are loaded."""
    if settings.tokenizer is None and models is not None:
        return models["target"].tokenizer
    from transformers import AutoTokenizer

    from llm_mia.backends.local import ModelSpec, resolve_model_directory

    spec = ModelSpec(name=settings.tokenizer) if settings.tokenizer else settings.scoring.models.specs()["target"]
    return AutoTokenizer.from_pretrained(
        str(resolve_model_directory(spec)),
        local_files_only=True,
        trust_remote_code=settings.scoring.models.trust_remote_code,
    )


def _refuse_overlap(suspect: list[Source], control: list[Source]) -> None:
    """The same text on both sides compares a work with itself: refused, naming the first one."""
    control_hashes = {sha256_text(s.text): s.name for s in control if s.text.strip()}
    shared = [(s.name, control_hashes[sha256_text(s.text)]) for s in suspect if sha256_text(s.text) in control_hashes]
    if shared:
        first = shared[0]
        raise InputError(
            f"{len(shared)} text(s) appear in both the suspect and the control input (first: suspect {first[0]!r} "
            f"= control {first[1]!r}); the controls must be texts the model cannot have seen, distinct from the "
            f"work tested. Remove them from one side"
        )


def _refuse_copied_text(
    suspect: list[Passage], control: list[Passage], suspect_sources: list[Source], control_sources: list[Source]
) -> None:
    """Refuse passages of one side mostly made of text found verbatim on the other (``llm_mia.stats.overlap``)."""
    from types import SimpleNamespace

    from llm_mia.stats.overlap import SHARE, shared_passages

    def texts(sources: list[Source], side: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(id=f"{side} source {s.name}", text=s.text) for s in sources]

    found = shared_passages(
        suspect,
        control,
        suspect_texts=texts(suspect_sources, "suspect"),
        control_texts=texts(control_sources, "control"),
    )
    if found:
        counts = {side: sum(f.side == side for f in found) for side in ("suspect", "control")}
        shown = "; ".join(
            f"{f.side} passage {f.passage!r} ({f.containment:.0%} found in {f.other})" for f in found[:EXAMPLES]
        )
        more = f"; and {len(found) - EXAMPLES} more" if len(found) > EXAMPLES else ""
        sources = sorted({f.other for f in found})
        raise InputError(
            f"{counts['suspect']} suspect and {counts['control']} control passage(s) are at least {SHARE:.0%} text "
            f"found verbatim on the other side: {shown}{more}. They come from {len(sources)} source(s) on the other "
            f"side ({', '.join(sources[:EXAMPLES])}{', ...' if len(sources) > EXAMPLES else ''}). The controls must "
            f"be separate texts the model cannot have seen: remove the shared text (boilerplate, a licence, "
            f"quotations) from one side"
        )
